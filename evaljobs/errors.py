"""Errors that reach the user as one line: what went wrong and what to do about it.

Every failure the CLI can explain is an :class:`EvaljobsError`; the CLI prints
``str(error)`` and exits with ``error.exit_code``. Anything else is a bug and
is shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


class EvaljobsError(Exception):
    """A failure with a message fit for the user; ``hint`` says how to fix it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return redact(text.replace("\n", " "))


class ConfigError(EvaljobsError):
    """The configuration file is missing, malformed or inconsistent."""

    exit_code = EXIT_USAGE


class SourceError(EvaljobsError):
    """The database cannot be reached, or a table or column is not what the config says."""


class SinkError(EvaljobsError):
    """Results could not be delivered (Pushgateway down, file not writable)."""


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")
_KEYWORD_PASSWORD = re.compile(r"(?i)(password\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s,;]+)")


def redact(text: str) -> str:
    """Hide credentials in URLs (``scheme://user:secret@``) and ``password=...`` pairs."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}***", text)
