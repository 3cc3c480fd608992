"""Shared fixtures: real PostgreSQL, real SQLite, DuckDB, a real Spark Thrift Server, a real Pushgateway.

PostgreSQL comes from ``$EVALJOBS_TEST_POSTGRES_URL``, else the server at 127.0.0.1:5432
(database ``test``) when it answers, else a throwaway cluster started from the installed
binaries (``initdb``/``pg_ctl``) for the session. Each test gets its own schema, dropped
afterwards. Missing services fail the tests; nothing here skips.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from dev import localservices

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _answers(url: str) -> bool:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _throwaway_cluster() -> tuple[str, callable]:
    """Start a temporary PostgreSQL cluster from the installed binaries; returns (url, stop)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = candidates[-1] if candidates else shutil.which("initdb")
    if not initdb:
        pytest.fail("no PostgreSQL server to test against: set EVALJOBS_TEST_POSTGRES_URL, start one at "
                    "127.0.0.1:5432, or install the postgresql package (make test does)")
    bindir = Path(initdb).parent
    root = Path(tempfile.mkdtemp(prefix="evaljobs-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    port = localservices.free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "start",
                    "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "test"],
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test", stop


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A SQLAlchemy URL of a PostgreSQL server for the whole session."""
    url = os.environ.get("EVALJOBS_TEST_POSTGRES_URL")
    if url:
        if not _answers(url):
            pytest.fail(f"EVALJOBS_TEST_POSTGRES_URL does not answer: {url}")
        yield url
        return
    if _answers(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
        return
    url, stop = _throwaway_cluster()
    try:
        yield url
    finally:
        stop()


def _with_search_path(url: str, schema: str) -> str:
    return str(sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}))


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"evaljobs_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_search_path(postgres_server, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'evaljobs-test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


#: The session's Spark Thrift Server, started in the background as soon as collection shows that
#: a selected test needs it (see pytest_collection_finish): its JVM start-up (15-45 s) and first
#: queries' warm-up (class loading, JIT; the first Spark test took 70 s of a 1 s test's work)
#: then overlap the tests before it instead of adding to the suite's wall time.
_SPARK_START: dict[str, object] = {}


def _needs_spark(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return "spark_server" in getattr(item, "fixturenames", ()) or "spark" in map(str, params.values())


def _start_spark(work: Path) -> localservices.LocalProcess:
    """Start the server, then warm it up with the kind of statements the tests send."""
    server = localservices.start_spark_thrift_server(work, log_path=work / "spark.log")
    _SPARK_START["server"] = server
    try:
        admin = sa.create_engine(f"{server.url}/default")
        with admin.connect() as conn:
            for statement in (
                "CREATE DATABASE IF NOT EXISTS evaljobs_warm_up",
                "CREATE TABLE evaljobs_warm_up.p (id STRING, v STRING, at TIMESTAMP, x DOUBLE) USING parquet",
                "CREATE TABLE evaljobs_warm_up.l (id STRING, label STRING, at TIMESTAMP) USING parquet",
                "INSERT INTO evaljobs_warm_up.p VALUES ('a', 'v1', TIMESTAMP '2026-01-01 00:00:00', 1.0), "
                "('b', 'v2', TIMESTAMP '2026-01-01 00:00:01', 2.0)",
                "INSERT INTO evaljobs_warm_up.l VALUES ('a', '1', TIMESTAMP '2026-01-01 01:00:00')",
                "SELECT p.v, l.label, count(*), sum(p.x), ROW_NUMBER() OVER (PARTITION BY p.v ORDER BY p.at) "
                "FROM evaljobs_warm_up.p p LEFT JOIN evaljobs_warm_up.l l ON l.id = p.id AND l.at < p.at + INTERVAL 1 DAY "
                "GROUP BY p.v, l.label, p.at",
                "DROP DATABASE evaljobs_warm_up CASCADE",
            ):
                result = conn.execute(sa.text(statement))
                if result.returns_rows:
                    result.fetchall()
        admin.dispose()
    except Exception:  # noqa: BLE001 - only a warm-up: the tests themselves report a broken server
        pass
    return server


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the Spark Thrift Server in the background when a selected test needs it."""
    if (session.config.option.collectonly or os.environ.get("EVALJOBS_TEST_SPARK_URL")
            or not any(_needs_spark(item) for item in session.items)):
        return
    from concurrent.futures import ThreadPoolExecutor

    work = Path(tempfile.mkdtemp(prefix="evaljobs-spark-"))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start")
    _SPARK_START.update(work=work, future=pool.submit(_start_spark, work))
    pool.shutdown(wait=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the early-started server even when no test ended up asking for it (-x, a crash)."""
    future = _SPARK_START.get("future")
    if future is None:
        return
    try:
        future.result(timeout=300)
    except Exception:  # noqa: BLE001 - its failure was reported by the tests that needed it
        pass
    server = _SPARK_START.get("server")
    if server is not None:
        server.stop(timeout=30)
    if exitstatus == 0:
        shutil.rmtree(_SPARK_START["work"], ignore_errors=True)  # kept on failure: spark.log


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ONE Spark Thrift Server for the session (local[2], 2 GB, UTC; metastore and warehouse in
    a temporary directory); its SQLAlchemy URL without a database. Fails when it cannot start.
    ``$EVALJOBS_TEST_SPARK_URL`` (``hive://host:port``) points the tests at a running one instead."""
    url = os.environ.get("EVALJOBS_TEST_SPARK_URL")
    if url:
        yield url.rstrip("/")
        return
    future = _SPARK_START.get("future")
    try:
        if future is not None:  # started at collection (the usual case)
            server = future.result()
        else:  # a test that asks for it without showing so at collection (getfixturevalue alone)
            work = tmp_path_factory.mktemp("spark")
            server = localservices.start_spark_thrift_server(work, log_path=work / "spark.log")
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.fail(f"cannot start the Spark Thrift Server: {exc}; make test installs Java and pyspark")
    with server:
        yield server.url


@pytest.fixture
def spark_url(spark_server: str) -> Iterator[str]:
    """A URL whose default database is a fresh Spark database, dropped after the test."""
    database = f"evaljobs_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{spark_server}/default")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {database}"))
    try:
        yield f"{spark_server}/{database}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database} CASCADE"))
        admin.dispose()


#: The demo data that the cross-engine comparisons read (demo jobs, backfill): its instant and days.
DEMO_NOW = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)
DEMO_DAYS = 3  # enough for the demo jobs' windows, references and the canary; small for Spark


@pytest.fixture(scope="session")
def demo_data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``demo_data(engine)``: the URL of a database holding ``demodata.build(now=DEMO_NOW,
    days=DEMO_DAYS)`` on that engine (sqlite, duckdb, postgresql, spark), built once per session.

    Only for tests that read the data and keep their results elsewhere (the demo jobs with
    --dry-run or a results.database, backfill into a SQLite store): building it is most of such
    a test's time on Spark (a few thousand rows as multi-row INSERTs), and it is the same data."""
    from evaljobs import demodata

    built: dict[str, str] = {}

    def url_of(engine: str) -> str:
        if engine in built:
            return built[engine]
        if engine in ("sqlite", "duckdb"):
            suffix = "db" if engine == "sqlite" else "duckdb"
            url = f"{engine}:///{tmp_path_factory.mktemp(f'demo-{engine}') / f'demo.{suffix}'}"
        else:
            server = request.getfixturevalue("postgres_server" if engine == "postgresql" else "spark_server")
            name = f"evaljobs_demo_{uuid.uuid4().hex[:12]}"
            if engine == "postgresql":
                admin, url = sa.create_engine(server), _with_search_path(server, name)
                create, drop = f'CREATE SCHEMA "{name}"', f'DROP SCHEMA "{name}" CASCADE'
            else:
                admin, url = sa.create_engine(f"{server}/default"), f"{server}/{name}"
                create, drop = f"CREATE DATABASE {name}", f"DROP DATABASE IF EXISTS {name} CASCADE"
            with admin.begin() as conn:
                conn.execute(sa.text(create))

            def cleanup(admin: sa.Engine = admin, drop: str = drop) -> None:
                with admin.begin() as conn:
                    conn.execute(sa.text(drop))
                admin.dispose()

            request.addfinalizer(cleanup)
        demodata.build(url, now=DEMO_NOW, days=DEMO_DAYS)
        built[engine] = url
        return url

    return url_of


#: The engines of the matrix: every test that takes ``engine_url`` runs on each.
ENGINES = ["sqlite", "postgresql", "duckdb", "spark"]


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like db_url, plus DuckDB and Spark: the same SQL files must run on every engine we claim."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'evaljobs-test.duckdb'}"
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url", "spark": "spark_url"}[request.param])


def is_spark(url: str) -> bool:
    """Whether ``url`` is the Spark Thrift Server (a distributed engine: fewer examples there)."""
    return url.startswith("hive://")


def examples(url: str, default: int, on_spark: int = 2) -> int:
    """How many hypothesis examples a property test runs on ``url``'s engine: every Spark
    statement is a job of its own (~0.1-1 s), so the engine matrix keeps Spark's share small."""
    return on_spark if is_spark(url) else default


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[localservices.LocalProcess]:
    """A real Pushgateway on a free port, stopped after the test."""
    try:
        gateway = localservices.start_pushgateway(log_path=tmp_path / "pushgateway.log")
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}; make test installs it")
    with gateway:
        yield gateway


def scrape(url: str) -> list:
    """The metric families a server exposes at ``url`` (e.g. a Pushgateway's /metrics)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(text_string_to_metric_families(response.read().decode()))


def samples(url: str, name: str) -> list:
    """Every sample called ``name`` at ``url``."""
    return [s for family in scrape(url) for s in family.samples if s.name == name]


#: Fixtures that stand for a running service: a test using one is marked ``service``.
SERVICE_FIXTURES = frozenset({"postgres_server", "pushgateway", "spark_server"})
#: Parameter values of the engine fixtures that need a server.
SERVICE_ENGINES = frozenset({"postgresql", "spark"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need a service, so ``-m 'not service'`` runs the fast, pure ones alone."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or SERVICE_ENGINES & set(map(str, params.values())):
            item.add_marker(pytest.mark.service)
