"""The process that stands for one hosted replica: its pid is the pod's.

Replicas of the built-in kinds share a replica host (``host``), yet each must keep a process
of its own, so that whatever a user does to "the pod's process" by pid touches that replica
alone: ``kill -9`` (an OOM kill, a chaos tool) ends it, SIGTERM stops it, SIGSTOP freezes
it. The holder is that process. It does nothing but wait for signals; the replica host
watches it (a pidfd) and serves the replica only while it lives, and not while it is
stopped. The daemon starts it and is its parent, so the pod's exit code is the holder's.

On x86-64 Linux the holder is a 178-byte static executable written into the state directory:
it waits for SIGTERM or SIGINT and then exits 0, as an echo or proxy replica does, and
takes about 10 kB of RSS, against 1.8 MB for ``sleep infinity`` (a dynamically linked
program maps libc) — hundreds of replicas each have one. Elsewhere, or where the state
directory does not allow executing files, the holder is ``sleep infinity`` (a SIGTERM then
ends the pod with -15, shown Failed, instead of 0).
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
# Block SIGINT and SIGTERM, wait for either (rt_sigtimedwait, again after an interruption
# such as SIGSTOP/SIGCONT), then exit 0: what an echo or proxy replica of its own does on
# those signals. SIGKILL ends it as it would end the replica (-9).
_X86_64_WAIT_THEN_EXIT = bytes.fromhex(
    # prctl(PR_SET_PDEATHSIG, SIGKILL): it dies with the daemon, as every mesh process does
    # (spawn.py), without a preexec_fn in the daemon, so starting one costs a vfork.
    "bf01000000"  # mov edi, 1
    "be09000000"  # mov esi, 9
    "b89d000000"  # mov eax, 157             prctl
    "0f05"  # syscall
    # argv[1], when given, is the daemon's pid: if the daemon died before the prctl, the
    # parent is someone else now, so exit(1) at once rather than live on as an orphan.
    "488b742410"  # mov rsi, [rsp+16]        argv[1]
    "31db"  # xor ebx, ebx                 (syscall clobbers rcx)
    "4885f6"  # test rsi, rsi
    "742b"  # jz checked
    "0fb616"  # parse: movzx edx, byte [rsi]
    "85d2"  # test edx, edx
    "740d"  # jz compare
    "83ea30"  # sub edx, '0'
    "6bdb0a"  # imul ebx, ebx, 10
    "01d3"  # add ebx, edx
    "48ffc6"  # inc rsi
    "ebec"  # jmp parse
    "b86e000000"  # compare: mov eax, 110    getppid
    "0f05"  # syscall
    "39d8"  # cmp eax, ebx
    "740c"  # je checked
    "bf01000000"  # mov edi, 1
    "b83c000000"  # mov eax, 60              exit(1)
    "0f05"  # syscall
    "6802400000"  # checked: push 0x4002     the set {SIGINT, SIGTERM}
    "4889e6"  # mov rsi, rsp
    "31ff"  # xor edi, edi                   SIG_BLOCK
    "31d2"  # xor edx, edx
    "41ba08000000"  # mov r10d, 8            sigsetsize
    "b80e000000"  # mov eax, 14              rt_sigprocmask
    "0f05"  # syscall
    "4889e7"  # wait: mov rdi, rsp
    "31f6"  # xor esi, esi
    "31d2"  # xor edx, edx                   no timeout
    "41ba08000000"  # mov r10d, 8
    "b880000000"  # mov eax, 128             rt_sigtimedwait
    "0f05"  # syscall
    "85c0"  # test eax, eax
    "7ee8"  # jle wait                       interrupted: wait again
    "31ff"  # xor edi, edi
    "b83c000000"  # mov eax, 60              exit(0)
    "0f05"  # syscall
)


def holder_image() -> bytes | None:
    """The holder executable for this machine, or None where there is none (not x86-64)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    code = _X86_64_WAIT_THEN_EXIT
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
    """The command line of a holder, its executable written into ``directory`` if needed.

    The small holder takes the pid of the process starting it as its one argument and dies
    with that process by itself (:func:`dies_with_parent`); ``sleep`` needs ``spawn.popen``.
    """
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


def dies_with_parent(argv: list[str]) -> bool:
    """Whether the holder ``argv`` asks for its parent-death signal itself."""
    return Path(argv[0]).name == HOLDER_NAME
