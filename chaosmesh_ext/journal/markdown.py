"""The little Markdown an experiment's description uses, as safe HTML for the report.

Paragraphs (blank lines), ``-``/``*`` lists, ```code```, ``**bold**``, ``*emphasis*`` and
``[links](https://...)`` (http and https only). Everything is escaped first, so no HTML in a
description reaches the page; anything else shows as the text it is. Pure.
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["to_html"]

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^\s)]+)\)")
_ITEM = re.compile(r"^\s*[-*]\s+(.*)$")


def _inline(text: str) -> str:
    # Code spans first, kept out of the other rules (placeholders hold them).
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    out = _CODE.sub(keep, escape(text, quote=True))
    out = _LINK.sub(r'<a href="\2" rel="noopener noreferrer">\1</a>', out)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _EM.sub(r"<i>\1</i>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], out)


def to_html(text: str) -> str:
    """``text`` (a description) as HTML paragraphs and lists."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        items = [_ITEM.match(ln) for ln in lines]
        if all(items):
            blocks.append(
                "<ul>" + "".join(f"<li>{_inline(m.group(1))}</li>" for m in items if m) + "</ul>"
            )
        else:
            blocks.append(f"<p>{_inline(' '.join(ln.strip() for ln in lines))}</p>")
    return "".join(blocks)
