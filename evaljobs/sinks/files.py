"""Writing a sink's output file so that no reader ever sees half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from evaljobs.errors import ConfigError, SinkError


def check_directory(path: str | os.PathLike[str], option: str) -> None:
    """Refuse an output path whose directory does not exist (rc 2, before any work is done).

    A missing directory is most often a typo; creating it would write the metrics where no
    collector looks, and the run would still say it succeeded.
    """
    parent = Path(path).parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {str(path)!r}: directory {str(parent)!r} does not exist",
                          "create it first, or fix the path (evaljobs does not create directories)")


def write_atomically(path: str | os.PathLike[str], data: bytes, what: str, option: str) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    A collector (node_exporter) or promtool reading the file sees the old or the new content,
    never a partial one. ``what`` and ``option`` name the file and the flag in the error.
    """
    target = Path(path)
    try:
        if not target.parent.is_dir():  # see check_directory: never created here
            raise FileNotFoundError(2, f"directory {str(target.parent)!r} does not exist")
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        raise SinkError(f"cannot write {what} {str(target)!r}: {exc.strerror}",
                        f"choose a writable path with {option}") from None
    return target
