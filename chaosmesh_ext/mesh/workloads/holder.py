"""The process that stands for one hosted replica: its pid is the pod's.

Replicas of the built-in kinds share a replica host (``host``), yet each must keep a process
of its own, so that whatever a user does to "the pod's process" by pid touches that replica
alone: ``kill -9`` (an OOM kill, a chaos tool) ends it, SIGTERM stops it, SIGSTOP freezes
it. The holder is that process. It does nothing but wait for signals; the replica host
watches it (a pidfd) and serves the replica only while it lives, and not while it is
stopped. The daemon starts it and is its parent, so the pod's exit code is the holder's.

On x86-64 Linux the holder is a 129-byte static executable (``pause()`` in a loop) written
into the state directory: about 10 kB of RSS, against 1.8 MB for ``sleep infinity`` (a
dynamically linked program maps libc), and hundreds of replicas each have one. Elsewhere,
or where the state directory does not allow executing files, ``sleep infinity`` it is.
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
from pathlib import Path

HOLDER_NAME = "replica-holder"
_BASE = 0x400000
_ELF_HEADER = 64
_PROGRAM_HEADER = 56
# loop: mov eax, 34 (pause); syscall; jmp loop
_X86_64_PAUSE_LOOP = bytes.fromhex("b822000000" "0f05" "ebf7")


def holder_image() -> bytes | None:
    """The holder executable for this machine, or None where there is none (not x86-64)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    code = _X86_64_PAUSE_LOOP
    size = _ELF_HEADER + _PROGRAM_HEADER + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, SysV
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        0x3E,  # EM_X86_64
        1,  # EV_CURRENT
        _BASE + _ELF_HEADER + _PROGRAM_HEADER,  # entry: the code right after the headers
        _ELF_HEADER,  # program headers follow the ELF header
        0,  # no section headers
        0,
        _ELF_HEADER,
        _PROGRAM_HEADER,
        1,
        0,
        0,
        0,
    )
    # One loadable, readable and executable segment: the whole file.
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    return header + program + code


def holder_argv(directory: Path) -> list[str]:
    """The command line of a holder, its executable written into ``directory`` if needed."""
    image = holder_image()
    if image is not None:
        path = directory / HOLDER_NAME
        try:
            if not path.exists() or path.read_bytes() != image:
                directory.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f".{HOLDER_NAME}.{os.getpid()}")
                temporary.write_bytes(image)
                temporary.chmod(0o755)
                temporary.replace(path)
            if os.access(path, os.X_OK):
                return [str(path)]
        except OSError:
            pass  # a read-only or full directory: the portable holder below
    sleep = shutil.which("sleep") or "/bin/sleep"
    return [sleep, "infinity"]
