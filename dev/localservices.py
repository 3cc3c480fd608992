"""Start and stop local Prometheus-side processes for the demo, ``make stack`` and the tests.

Not used by evaljobs' own jobs: production deployments point at their existing
Pushgateway. Binaries are the Debian packages' (``prometheus-pushgateway``,
``prometheus``, ``promtool``) or upstream's names found on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PUSHGATEWAY_BINARIES = ("prometheus-pushgateway", "pushgateway")
PROMETHEUS_BINARIES = ("prometheus",)


def find_binary(names: tuple[str, ...]) -> str | None:
    """The first of ``names`` on PATH (or in /usr/bin, /usr/local/bin)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
        if found:
            return found
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200; raise RuntimeError with the reason otherwise."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready within {timeout:.0f}s ({last_error})")


@dataclass
class LocalProcess:
    """A background server process with its URL; ``stop()`` ends it (and is idempotent)."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "LocalProcess":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _spawn(command: list[str], log_path: Path | None, detach: bool) -> subprocess.Popen:
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
    finally:
        if log_path:
            output.close()  # the child keeps its own descriptor


def _start_checked(name: str, command_for_port, port: int | None, ready_path: str, log_path: Path | None,
                   detach: bool, timeout: float) -> LocalProcess:
    """Start a server and make sure the one answering is ours.

    A free port can be taken by another process between the check and the bind. The loser
    exits at once, while the readiness probe may be answered by the winner; so the process
    must still be alive a moment after the probe succeeds, or it is tried on another port.
    """
    attempts = 1 if port else 5
    last_error = ""
    for _ in range(attempts):
        chosen = port or free_port()
        url = f"http://127.0.0.1:{chosen}"
        process = _spawn(command_for_port(chosen), log_path, detach)
        try:
            wait_until_ready(f"{url}{ready_path}", timeout=timeout, process=process)
            time.sleep(0.3)
            if process.poll() is None:
                return LocalProcess(name, url, process, log_path)
            last_error = f"exited with code {process.returncode} (port {chosen} taken?)"
        except RuntimeError as exc:
            last_error = str(exc)
            if process.poll() is None:
                process.kill()
                process.wait()
    raise RuntimeError(f"{name} did not start: {last_error}")


def start_pushgateway(port: int | None = None, log_path: Path | None = None, detach: bool = False,
                      persistence_file: Path | None = None) -> LocalProcess:
    """Start a Pushgateway on 127.0.0.1 (a free port unless given) and wait until it is ready.

    Debian's build persists to /var/lib/prometheus/pushgateway.data by default, which every
    instance would share and reload; ours keeps metrics in memory unless given a file.
    """
    binary = find_binary(PUSHGATEWAY_BINARIES)
    if binary is None:
        raise FileNotFoundError("no Pushgateway binary (install the Debian package prometheus-pushgateway)")
    persistence = f"--persistence.file={persistence_file or ''}"
    return _start_checked("pushgateway", lambda p: [binary, f"--web.listen-address=127.0.0.1:{p}", persistence],
                          port, "/-/ready", log_path, detach, timeout=20)


def start_prometheus(
    config_file: Path,
    data_dir: Path,
    port: int | None = None,
    log_path: Path | None = None,
    detach: bool = False,
    extra_args: list[str] | None = None,
) -> LocalProcess:
    """Start Prometheus on 127.0.0.1 with ``config_file`` and ``data_dir``; wait until ready."""
    binary = find_binary(PROMETHEUS_BINARIES)
    if binary is None:
        raise FileNotFoundError("no prometheus binary (install the Debian package prometheus)")
    data_dir.mkdir(parents=True, exist_ok=True)

    def command(chosen: int) -> list[str]:
        return [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{chosen}",
            "--web.enable-lifecycle",
            *(extra_args or []),
        ]

    return _start_checked("prometheus", command, port, "/-/ready", log_path, detach, timeout=60)


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Spark settings for tests and the demo: UTC, a small local engine, no web UI, few shuffle
#: partitions (the default 200 makes every small query schedule 200 tasks).
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
}


def spark_home() -> Path:
    """Where PyPI's pyspark keeps Spark (bin/spark-submit, jars/): the wheel ships the Thrift Server."""
    try:
        import pyspark
    except ImportError:
        raise FileNotFoundError("pyspark is not installed (pip install pyspark; make test does)") from None
    return Path(pyspark.__file__).resolve().parent


def start_spark_thrift_server(work_dir: Path, port: int | None = None, log_path: Path | None = None,
                              driver_memory: str = "2g", cores: int = 2, timeout: float = 180.0,
                              detach: bool = False) -> LocalProcess:
    """Start Spark's Thrift Server (HiveServer2 protocol) on 127.0.0.1; wait until it listens.

    Its Derby metastore, Derby log and warehouse live in ``work_dir``, never in the current
    directory. ``url`` is the SQLAlchemy URL without a database (``hive://127.0.0.1:PORT``).
    Raises FileNotFoundError without Java or pyspark, RuntimeError when it does not start.
    """
    java = find_binary(("java",))
    if java is None:
        raise FileNotFoundError("no java binary (install the Debian package openjdk-17-jre-headless; make test does)")
    home = spark_home()
    work_dir.mkdir(parents=True, exist_ok=True)
    chosen = port or free_port()
    conf = SPARK_CONF | {
        "spark.sql.warehouse.dir": str(work_dir / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={work_dir}",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={work_dir / 'metastore_db'};create=true",
    }
    command = [str(home / "bin" / "spark-submit"),
               "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
               "--master", f"local[{cores}]", "--driver-memory", driver_memory,
               *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")],
               "spark-internal",
               "--hiveconf", f"hive.server2.thrift.port={chosen}",
               "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1"]
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=work_dir, start_new_session=True,
                                   env=os.environ | {"SPARK_HOME": str(home), "JAVA_HOME": str(Path(os.path.realpath(java)).parents[1])})
    finally:
        if log_path:
            output.close()
    server = LocalProcess("spark-thrift-server", f"hive://127.0.0.1:{chosen}", process, log_path,
                          extra={"port": str(chosen), "work_dir": str(work_dir)})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark Thrift Server exited with code {process.returncode}"
                               + (f" (see {log_path})" if log_path else ""))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", chosen)) == 0:
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the Spark Thrift Server did not listen on port {chosen} within {timeout:.0f}s"
                       + (f" (see {log_path})" if log_path else ""))
