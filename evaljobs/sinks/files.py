"""Writing a sink's output file so that no reader ever sees half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from evaljobs.errors import SinkError


def write_atomically(path: str | os.PathLike[str], data: bytes, what: str, option: str) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    A collector (node_exporter) or promtool reading the file sees the old or the new content,
    never a partial one. ``what`` and ``option`` name the file and the flag in the error.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        raise SinkError(f"cannot write {what} {str(target)!r}: {exc.strerror}",
                        f"choose a writable path with {option}") from None
    return target
