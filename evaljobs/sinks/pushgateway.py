"""Push results to a Prometheus Pushgateway, following the batch-job guidance.

Each group ``{job=<job name>, model=..., model_version=...}`` is replaced whole with a PUT
(``push_to_gateway``) from a fresh registry, so series that a version no longer has (a class
that vanished, say) disappear instead of lingering. Grouping-key values with ``/`` or spaces
are sent in prometheus_client's base64 form.
"""

from __future__ import annotations

import base64
import http.client
import io
import socket
import ssl
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client.core import Metric
from prometheus_client.exposition import push_to_gateway

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
    #: TLS, as Prometheus's own tls_config: a CA bundle for a private CA, a client certificate
    #: and key, and (for tests only) no verification at all.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False

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
        return cls(bare, config.timeout_seconds, username, password, config.ca_file, config.cert_file,
                   config.key_file, config.insecure_skip_verify)

    def tls_context(self) -> ssl.SSLContext:
        """The TLS settings of an https gateway (a ConfigError-worthy file problem is a SinkError)."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"cannot load the Pushgateway TLS files: {exc}",
                            "check pushgateway.ca_file, cert_file and key_file (PEM files)") from None
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _handler(self) -> Callable[..., Any]:
        """A prometheus_client push handler with basic auth, TLS settings and one deadline for
        the whole request (connect, send, and the full reply): urllib's timeout bounds each
        socket read, so a gateway that trickles its reply would hold a run past ``timeout_seconds``."""
        auth = None
        if self.username is not None:
            auth = "Basic " + base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        context = self.tls_context() if self.url.startswith("https:") else None

        def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Callable[[], None]:
            def handle() -> None:
                _request_within(url, method, [*headers, *([("Authorization", auth)] if auth else [])], data,
                                float(timeout or self.timeout_seconds), context)
            return handle

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
            if isinstance(reason, ssl.SSLError) or isinstance(exc, ssl.SSLError):
                error = reason if isinstance(reason, ssl.SSLError) else exc
                reason = f"TLS: {getattr(error, 'verify_message', None) or error.reason or error}"
                if "certificate verify failed" not in reason and "CERTIFICATE_VERIFY_FAILED" in str(error):
                    reason = f"TLS: certificate verify failed ({reason[5:]})"
                hint = ("set pushgateway.ca_file to the CA that signed the gateway's certificate "
                        "(or cert_file/key_file if it asks for a client certificate)")
            elif isinstance(exc, TimeoutError):
                hint = "raise pushgateway.timeout_seconds if the gateway is just slow"
            else:
                hint = "check pushgateway.url and that the gateway is running, or use --dry-run"
            raise SinkError(f"cannot reach Pushgateway {self.url} for job {job!r}: {redact(str(reason) or 'timed out')}",
                            hint) from None


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


def _request_within(url: str, method: str, headers: list[tuple[str, str]], data: bytes, deadline_seconds: float,
                    context: ssl.SSLContext | None) -> None:
    """One HTTP request that must be answered completely within ``deadline_seconds``.

    The request runs in a worker thread; when the deadline passes first, its socket is shut
    down (which ends the worker) and TimeoutError is raised. A reply of 400 or more raises
    urllib's HTTPError with the body, as urllib would.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=deadline_seconds, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=deadline_seconds)
    outcome: dict[str, Any] = {}

    def exchange() -> None:
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=data,
                         headers=dict(headers))
            response = conn.getresponse()
            outcome["reply"] = (response.status, response.reason, response.headers, response.read())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=exchange, name="evaljobs-push", daemon=True)
    worker.start()
    worker.join(deadline_seconds)
    late = TimeoutError(f"no complete answer within {deadline_seconds:g}s (pushgateway.timeout_seconds)")
    if worker.is_alive():
        if conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.close()
        worker.join(1.0)
        raise late
    conn.close()
    if isinstance(outcome.get("error"), TimeoutError):  # a socket timeout just before the deadline
        raise late from None
    if "error" in outcome:
        raise outcome["error"]
    status, reason, reply_headers, body = outcome["reply"]
    if status >= 400:
        raise urllib.error.HTTPError(url, status, reason, reply_headers, io.BytesIO(body))
