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
#: sysexits.h's EX_TEMPFAIL: nothing was evaluated because another live run holds the window;
#: the run should be retried later. Not 0, so that a scheduler that only sees the exit code
#: (cron, a Kubernetes CronJob) does not take a run that did nothing for a success.
EXIT_BUSY = 75


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGINT) turned into an exception, so that ``finally`` blocks
    and claim releases run on the way out. A KeyboardInterrupt, so that no ``except Exception``
    swallows it and the PostgreSQL driver cancels the running query instead of leaving it to
    run on in the server. ``notes`` collects what was cleaned up, for the one line the CLI prints."""

    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code
        self.notes: list[str] = []


class EvaljobsError(Exception):
    """A failure with a message fit for the user; ``hint`` says how to fix it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return redact(one_line(text))


class ConfigError(EvaljobsError):
    """The configuration file is missing, malformed or inconsistent."""

    exit_code = EXIT_USAGE


class SourceError(EvaljobsError):
    """The database cannot be reached, or a table or column is not what the config says."""


class SinkError(EvaljobsError):
    """Results could not be delivered (Pushgateway down, file not writable)."""


#: ``user:secret@`` anywhere in a word, whatever comes before it: a mistyped URL
#: (``postgresql//u:pw@h``, ``http:/u:pw@h``) or a password with ``/`` or ``@`` in it must not
#: depend on a URL parser to be hidden. The secret runs to the LAST ``@`` of the word, so an
#: unescaped ``@`` in a password hides all of it; it never crosses whitespace or a quote, and
#: never starts with ``//`` (that is ``scheme://user@host``, which has no password).
_USER_SECRET = re.compile(r"(?P<user>(?:[A-Za-z][A-Za-z0-9+.\-]*://)?[^\s:/@'\"]*):(?!//)(?P<secret>[^\s'\"]*)@")
_KEYWORD_PASSWORD = re.compile(r"(?i)(password\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s,;]+)")


def redact(text: str) -> str:
    """Hide credentials (``user:secret@`` in any word, well-formed URL or not) and ``password=...`` pairs."""
    text = _USER_SECRET.sub(lambda m: f"{m.group('user')}:***@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}***", text)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters as escapes (``\\n``), so a
    class label or driver message never splits a message that log parsers read line by line."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
