"""Warnings for the request being served, sent back as Kubernetes ``Warning:`` headers.

kube-apiserver answers a write it accepts with ``Warning: 299 - "<text>"`` headers (deprecated
fields, a validating webhook's warnings); kubectl prints each as ``Warning: <text>``, and the
official Python client logs them. The embedded API does the same for the fields it accepts but
cannot enforce on one machine (``istio.fidelity``), for istiod's validation warnings and for
what the translator reports about the new state.

Code running for a request calls ``warn(text, about=(kind, namespace, name))``; the server
collects them with ``collecting()`` and sends those about the object the request names (a
write to one object is not answered with warnings about another), or all of them for a request
that names none (``mesh up -f``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["ApiWarning", "collecting", "header_value", "warn"]

Subject = tuple[str, str, str]  # (kind, namespace, name)

# kube-apiserver caps what it sends back (4 KiB of text per warning, 50 warnings): so do we.
MAX_WARNINGS = 50
MAX_TEXT = 4096


@dataclass(frozen=True)
class ApiWarning:
    text: str
    about: Subject | None = None

    def concerns(self, subject: Subject | None) -> bool:
        """Is this warning for a request about ``subject`` (None: a request about all)?"""
        return subject is None or self.about is None or self.about == subject


_current: ContextVar[list[ApiWarning] | None] = ContextVar("chaosmesh_api_warnings", default=None)


@contextmanager
def collecting() -> Iterator[list[ApiWarning]]:
    """Collect the ``warn()`` calls made for this request until the block ends."""
    bag: list[ApiWarning] = []
    token = _current.set(bag)
    try:
        yield bag
    finally:
        _current.reset(token)


def warn(text: str, about: Subject | None = None) -> None:
    """Add a warning to the current request's answer (outside a request: nobody to tell)."""
    bag = _current.get()
    item = ApiWarning(text[:MAX_TEXT], about)
    if bag is not None and item not in bag and len(bag) < MAX_WARNINGS:
        bag.append(item)


def header_value(text: str) -> str:
    """The header as kube-apiserver writes it: ``299 - "text"`` (one line, quotes escaped,
    ASCII so that any HTTP stack carries it)."""
    flat = " ".join(text.split())
    escaped = flat.replace("\\", "\\\\").replace('"', '\\"')
    return '299 - "' + escaped.encode("ascii", "backslashreplace").decode("ascii") + '"'
