"""Push results to a Prometheus Pushgateway, following the batch-job guidance.

Each group ``{job=<job name>, model=..., model_version=...}`` is replaced whole with a PUT
(``push_to_gateway``) from a fresh registry, so series that a version no longer has (a class
that vanished, say) disappear instead of lingering. Grouping-key values with ``/`` or spaces
are sent in prometheus_client's base64 form.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client.core import Metric
from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    push_to_gateway,
)

from evaljobs import exposition
from evaljobs.config import Pushgateway
from evaljobs.errors import SinkError, redact
from evaljobs.records import JobResult


def _decoded(part: str | None) -> str | None:
    return None if part is None else unquote(part)


@dataclass
class PushgatewaySink:
    """Pushes every group of a job run; raises SinkError (one line, no credentials) on failure."""

    url: str
    timeout_seconds: float = 10.0
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_config(cls, config: Pushgateway) -> "PushgatewaySink":
        parts = urlsplit(config.url)
        # Credentials in the URL are percent-encoded (an '@' in a password is %40); the header
        # carries them decoded, as every HTTP client does.
        username = config.username if config.username is not None else _decoded(parts.username)
        password = config.password if config.password is not None else _decoded(parts.password)
        # Credentials travel in the Authorization header, never in the URL we print or request.
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        bare = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return cls(bare, config.timeout_seconds, username, password)

    def _handler(self) -> Callable[..., Any]:
        if self.username is None:
            return default_handler
        username, password = self.username, self.password or ""

        def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Callable[[], None]:
            return basic_auth_handler(url, method, timeout, headers, data, username, password)

        return handler

    def push(self, job: JobResult, success_timestamp: float | None = None) -> int:
        """PUT every group of ``job``; returns how many groups were pushed."""
        stamp = time.time() if success_timestamp is None else success_timestamp
        pushed = 0
        for grouping_key, families in exposition.groups(job, stamp):
            self.push_group(job.job, grouping_key, families)
            pushed += 1
        return pushed

    def push_group(self, job: str, grouping_key: dict[str, str], families: list[Metric]) -> None:
        """PUT one group ``{job, **grouping_key}`` holding exactly ``families``."""
        try:
            push_to_gateway(
                self.url,
                job=job,
                registry=exposition.registry_of(families),
                grouping_key=grouping_key,
                timeout=self.timeout_seconds,
                handler=self._handler(),
            )
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace").strip().splitlines()
            detail = f"HTTP {exc.code}" + (f": {body[0]}" if body else "")
            raise SinkError(f"Pushgateway {self.url} refused the push of job {job!r}: {detail}",
                            refusal_hint(exc.code)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SinkError(
                f"cannot reach Pushgateway {self.url} for job {job!r}: {redact(str(reason))}",
                "check pushgateway.url and that the gateway is running, or use --dry-run",
            ) from None


def refusal_hint(status: int) -> str:
    """What to do about a gateway's HTTP error ``status``."""
    if status in (401, 403):
        return ("check pushgateway.username and pushgateway.password (or the user:password in pushgateway.url) "
                "against the gateway's web config")
    if status in (404, 405):
        return "check pushgateway.url: it names the gateway itself (e.g. http://pushgateway:9091), not a path in it"
    if status == 400:
        return "check the gateway's log; a metric of another type under the same name is refused"
    if status >= 500:
        return "the gateway failed; check the gateway's log (the result stays stored and is pushed at the next run)"
    return "check the gateway's log"
