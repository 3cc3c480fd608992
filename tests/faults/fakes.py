"""Small fake servers for the fault-injection tests, all on 127.0.0.1.

- :class:`FakeGateway`: an HTTP(S) server that answers PUTs as told -- ok, a status code, late,
  or trickling its reply a byte at a time -- and records what it was sent (path, Authorization);
- :class:`TcpProxy`: forwards a port to PostgreSQL and can be killed, cutting every connection;
- :class:`HungServer`: accepts connections and never says a word;
- :func:`private_ca`: a CA and a server certificate for 127.0.0.1, made with openssl.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    gateway: "FakeGateway"
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        gateway = self.gateway
        gateway.requests.append((self.path, self.headers.get("Authorization")))
        if gateway.required_auth and self.headers.get("Authorization") != gateway.required_auth:
            self._reply(401, b"Unauthorized\n")
            return
        if gateway.delay:
            time.sleep(gateway.delay)
        if gateway.trickle:
            body = b"x" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:  # one byte at a time, each well within any per-read timeout
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(gateway.trickle)
            return
        self._reply(gateway.status, b"" if gateway.status < 400 else f"error {gateway.status}\n".encode())
        if gateway.status < 400:
            gateway.accepted.append(self.path)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@dataclass
class FakeGateway:
    """A Pushgateway stand-in whose behaviour the test sets (see the module docstring)."""

    status: int = 200
    delay: float = 0.0
    trickle: float = 0.0
    required_auth: str | None = None
    certificate: tuple[Path, Path] | None = None  # (cert, key): serve HTTPS
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)

    def __enter__(self) -> "FakeGateway":
        handler = type("Handler", (_Handler,), {"gateway": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if self.certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, self.certificate))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.certificate else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class TcpProxy:
    """127.0.0.1:<port> -> target; :meth:`kill` closes the listener and every connection."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.alive = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.alive:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.alive:  # accepted while being killed: refuse
                client.close()
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def kill(self) -> None:
        self.alive = False
        try:  # wakes the blocked accept(); close() alone would leave the port listening
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


class HungServer:
    """Accepts TCP connections and never answers (a wedged server, a black-holed port)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(client)

    def close(self) -> None:
        self.listener.close()
        for s in self.held:
            s.close()


def private_ca(directory: Path) -> dict[str, Path]:
    """A private CA and a certificate for 127.0.0.1 signed by it (openssl), as PEM files."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AssertionError("openssl is needed for the TLS fault tests; make test installs it")
    files = {name: directory / f"{name}.pem" for name in ("ca", "ca_key", "cert", "key")}
    csr, ext = directory / "server.csr", directory / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=evaljobs test CA",
        "-keyout", str(files["ca_key"]), "-out", str(files["ca"]))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(files["key"]),
        "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey", str(files["ca_key"]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(files["cert"]))
    return files
