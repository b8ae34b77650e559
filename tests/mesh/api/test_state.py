"""mesh.json as its readers see it: written whole, from any number of threads at once.

The metrics exporter re-reads mesh.json whenever its mtime changes, and ``mesh status``,
``url`` and ``down`` read it at any moment; the daemon rewrites it from the API's handlers
and from its monitor thread.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from chaosmesh_ext.mesh.state import StateDir


def test_concurrent_writers_never_fail_and_readers_never_see_half_a_file(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    errors: list[str] = []
    done = threading.Event()

    def write(writer: int) -> None:
        try:
            for i in range(200):
                state.write({"writer": writer, "i": i, "endpoints": ["x" * 100] * 200})
        except Exception as exc:  # the daemon would lose a status update
            errors.append(f"writer {writer}: {exc!r}")

    def read() -> None:
        while not done.is_set():
            try:
                json.loads(state.mesh_json.read_text())
            except FileNotFoundError:
                pass  # before the first write
            except ValueError as exc:
                errors.append(f"reader saw a torn file: {exc}")

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    done.set()
    reader.join(timeout=60)
    assert not errors, errors[:3]
    assert state.read() is not None and state.read()["i"] == 199  # type: ignore[index]
    # No temp file is left beside mesh.json.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.json"]
