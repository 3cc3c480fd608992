"""Named SQL files from ``sql/``, rendered with quoted identifiers.

Queries are templates: ``{name}`` slots take identifiers that evaljobs quotes for the
engine's dialect (never raw user text), and ``{window_rows}``-style slots include another
file of the same folder. Values are always bound parameters (``:name``).

In a source checkout the files are read from ``sql/`` at the repository root; an installed
wheel carries them as ``evaljobs/sql/``.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

_INCLUDES = ("window_rows",)


def sql_directory() -> Path:
    """Where the SQL files are: inside the installed package, else the checkout's ``sql/``."""
    packaged = resources.files("evaljobs") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "sql"


@lru_cache(maxsize=None)
def read_sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    path = sql_directory() / f"{name}.sql"
    return path.read_text(encoding="utf-8")


def render(name: str, identifiers: Mapping[str, str], slots: Mapping[str, str] | None = None) -> str:
    """``sql/<name>.sql`` with its identifier slots filled and fragments included.

    ``slots`` fills further slots with SQL that evaljobs generated (another rendered fragment,
    a list of generated column expressions), never with user text.
    """
    slots = {**identifiers, **(slots or {})}
    needed = {field for _, field, _, _ in string.Formatter().parse(read_sql(name)) if field}
    for include in _INCLUDES:
        if include in needed and include not in slots:
            slots[include] = render(include, identifiers)
    return _without_comments(read_sql(name)).format_map(slots)


def _without_comments(text: str) -> str:
    # Comments may mention :parameters, which the driver would otherwise expect values for.
    # (Our SQL has no '--' inside string literals.)
    return re.sub(r"--[^\n]*", "", text)


def statements(name: str) -> list[str]:
    """The statements of a multi-statement file such as ``schema.sql``, comments removed."""
    text = _without_comments(read_sql(name))
    return [part.strip() for part in text.split(";") if part.strip()]
