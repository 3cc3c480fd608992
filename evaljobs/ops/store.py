"""The results store: every evaluated window in a table of the database, with its run's state.

One row per (job, window) -- ``row_kind = 'job'``, ``model_version = ''`` -- holds the run: its
status (``running``, ``ok``, ``partial``, ``empty``, ``failed``), timing, who holds it, whether
it was pushed, and the job-level result. One row per (job, model version, window) holds that
version's result: key numbers as columns, the whole record as JSON (``to_dict()``), and the
metrics exactly as pushed (Prometheus text of its group, from :mod:`evaljobs.exposition`).

The job row doubles as the run's **claim**: it is inserted (``running``) before evaluation
starts, so the primary key lets one process at a time evaluate a window; a claim older than
``claim_expiry`` belongs to a process that died and may be taken over. The final write --
version rows replaced, job row finished -- is one transaction, so a run that is stopped or
killed leaves either the earlier result or the new one, never half of one.

A failed push leaves rows ``pending``; :meth:`ResultsStore.push_pending` pushes, at the next
run, the newest pending window of each Pushgateway group from the stored text (the gateway
holds only the latest value of a group, so older pending windows are ``superseded``).

Tables are created on first use from the versioned files in ``sql/migrations/``; the applied
versions are rows of ``evaljobs_schema_version``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Connection, Engine

from evaljobs import exposition
from evaljobs.db import sqlfiles
from evaljobs.errors import EvaljobsError, SinkError
from evaljobs.records import JobResult
from evaljobs.db.dialects import Dialect, dialect_of
from evaljobs.db.engine import connection
from evaljobs.windows import Window, as_utc, iso

RESULTS_TABLE = "evaljobs_results"
SUMMARIES_TABLE = "evaljobs_summaries"
SCHEMA_VERSION_TABLE = "evaljobs_schema_version"
DONE_STATUSES = ("ok", "partial", "empty")

#: A constant key for PostgreSQL's advisory lock around migrations ("evaljobs" in ASCII).
_MIGRATION_LOCK_KEY = 0x6576616C6A6F6273


class ClaimLost(EvaljobsError):
    """A run's claim expired and another process took the window over; its result was discarded."""


@dataclass(frozen=True)
class Claim:
    """A window this process holds until it finishes, fails or releases it."""

    job: str
    model: str
    window: Window
    origin: str
    token: str
    fresh: bool  # the window had no row before this claim
    claimed_at: datetime
    #: The claim of a process on this host that is gone, which this claim replaced.
    took_over: str | None = None


@dataclass(frozen=True)
class Holder:
    """Why a window could not be claimed: who holds it, or that it is already done."""

    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    finished_at: datetime | None

    def describe(self) -> str:
        if self.claimed_by:
            return f"being evaluated by {self.claimed_by} since {_iso(self.claimed_at)}"
        return f"already evaluated ({self.status}) at {_iso(self.finished_at)}"


@dataclass(frozen=True)
class Summary:
    """One stored summary (sql/migrations/003_summaries.sql): what it was computed from and its payload."""

    key: str
    fingerprint: str
    as_of: str
    payload: str


@dataclass(frozen=True)
class SummaryBatch:
    """One kind's writes of :meth:`ResultsStore.save_summaries`, for :meth:`ResultsStore.save_summary_batches`."""

    kind: str
    written: Sequence[Summary]
    touched: Sequence[str]
    as_of: str
    now: datetime
    stale_before: datetime
    touched_ranges: Sequence[tuple[str, str, str]] = ()


@dataclass
class PushReport:
    """What :meth:`ResultsStore.push_pending` did: groups pushed (key, window start, end), rows superseded."""

    pushed: list[tuple[dict[str, str], datetime, datetime]] = field(default_factory=list)
    superseded: int = 0


def claim_token() -> str:
    """``host:pid:random`` -- unique per claim, and says which process holds a window."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_local_claim(token: str | None) -> bool:
    """Whether ``token`` (see :func:`claim_token`) is held by a process of this host that is gone.

    A run killed with SIGKILL, or whose database connection dropped before it could record its
    failure, leaves its claim behind; on the same host its process can be asked for, so a retry
    need not wait ``claim_expiry``. A claim from another host (or an unreadable one) is never
    taken for dead here. Hosts are told apart by name: containers that share a host name but
    not a PID namespace must keep ``claim_expiry`` as their only way out (README, Failure behaviour).
    """
    host, _, rest = (token or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


def _iso(moment: datetime | None) -> str:
    return "?" if moment is None else iso(moment)


def _as_datetime(value: Any) -> datetime | None:
    """A timestamp read back from the table: text on SQLite, a datetime elsewhere."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))


def exposition_text(families: Sequence[Metric]) -> str:
    """The Prometheus text format of a group's families, as stored and later pushed."""
    return generate_latest(exposition.registry_of(families)).decode("utf-8")


def families_from_text(text: str) -> list[Metric]:
    """The families of stored text (floats round-trip exactly through ``repr``)."""
    return list(text_string_to_metric_families(text))


def job_status(result: JobResult) -> str:
    if result.partial:
        return "partial"
    return "ok" if result.versions else "empty"


class ResultsStore:
    """The results table of one database (see the module docstring)."""

    def __init__(self, engine: Engine, claim_expiry: timedelta = timedelta(hours=1)):
        self.engine = engine
        self.claim_expiry = claim_expiry
        self._migrated = False
        self._local_push_lock = threading.Lock()

    # ---- plumbing ---------------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def spec(self) -> Dialect:
        """The engine's locks and spellings (:mod:`evaljobs.db.dialects`)."""
        return dialect_of(self.dialect)

    def identifiers(self) -> dict[str, str]:
        quote = self.engine.dialect.identifier_preparer.quote
        return {
            "results": quote(RESULTS_TABLE),
            "schema_version": quote(SCHEMA_VERSION_TABLE),
            "results_by_time": quote(f"{RESULTS_TABLE}_by_time"),
            "results_by_push": quote(f"{RESULTS_TABLE}_by_push"),
            "results_by_window": quote(f"{RESULTS_TABLE}_by_window"),
            "summaries": quote(SUMMARIES_TABLE),
        }

    def _statement(self, name: str) -> sa.TextClause:
        return sa.text(sqlfiles.render(f"results/{name}", self.identifiers(), dialect=self.dialect))

    def _t(self, moment: datetime | None) -> Any:
        return None if moment is None else self.spec.bind_time(moment)

    def _key(self, job: str, window: Window) -> dict[str, Any]:
        return {"job": job, "window_start": self._t(window.start), "window_end": self._t(window.end)}

    @contextmanager
    def _transaction(self, purpose: str) -> Iterator[Connection]:
        self.ensure_schema()
        with connection(self.engine, f"results store: {purpose}") as conn:
            with conn.begin():
                yield conn

    # ---- schema -----------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create or upgrade the tables once per store (see :meth:`migrate`).

        When every migration is already applied nothing else runs -- no ``CREATE TABLE IF NOT
        EXISTS`` -- so a role that may only read and write the existing tables can use the store.
        """
        if not self._migrated:
            if not self._up_to_date():
                self.migrate()
            self._migrated = True

    def _up_to_date(self) -> bool:
        """Whether every migration of ``sql/migrations/`` is recorded (False also when the
        version table does not exist yet)."""
        try:
            with self.engine.connect() as conn:
                done = {int(row.version) for row in conn.execute(self._statement("applied_migrations"))}
        except sa.exc.DBAPIError:
            return False  # no table yet, or unreadable: migrate() says what is wrong
        return {version for version, _ in migrations()} <= done

    def migrate(self, now: datetime | None = None) -> list[str]:
        """Apply the migrations of ``sql/migrations/`` not yet recorded; returns their names.

        Serialised between processes (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
        SQLite; see the dialect's ``migration_lock``), and each migration is applied with its
        version row in one transaction.
        """
        applied_now: list[str] = []
        stamp = now or datetime.now(timezone.utc)
        ids = self.identifiers()  # migrations are rendered with the same quoted names
        with connection(self.engine, "results store: creating or upgrading its tables") as conn:
            if self.spec.migration_lock == "immediate":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.begin()
                if self.spec.migration_lock == "advisory":
                    conn.execute(self._statement("advisory_xact_lock"), {"key": _MIGRATION_LOCK_KEY})
            conn.execute(self._statement("schema_version"))
            done = {row.version for row in conn.execute(self._statement("applied_migrations"))}
            for version, name in migrations():
                if version in done:
                    continue
                for statement in _split(sqlfiles.render(f"migrations/{name}", ids, dialect=self.dialect)):
                    conn.execute(sa.text(statement))
                conn.execute(self._statement("record_migration"),
                             {"version": version, "name": name, "applied_at": self._t(stamp)})
                applied_now.append(name)
            conn.commit()
        return applied_now

    def schema_versions(self) -> list[int]:
        """The applied migration versions, ascending."""
        self.ensure_schema()
        with connection(self.engine, "results store: reading its schema version") as conn:
            return [int(r.version) for r in conn.execute(self._statement("applied_migrations"))]

    # ---- claims -----------------------------------------------------------------------------
    def claim(self, job: str, model: str, window: Window, origin: str, now: datetime,
              replace: bool) -> Claim | Holder:
        """Claim ``(job, window)`` for this process, or say who holds it.

        ``replace`` (``run``, ``backfill``) re-evaluates a finished window; without it
        (``schedule``) a finished window is left alone. Either way a window held by a live
        claim is never evaluated twice at once.
        """
        token = claim_token()
        params = self._key(job, window) | {
            "model": model,
            "evaluated_at": self._t(window.evaluated_at),
            "labels_as_of": self._t(window.labels_as_of),
            "origin": origin,
            "claimed_by": token,
            "now": self._t(now),
        }
        takeover = self._key(job, window) | {
            "claimed_by": token, "now": self._t(now),
            "stale_before": self._t(now - self.claim_expiry), "replace": 1 if replace else 0,
            "dead_claim": None,
        }
        holder = None
        for _attempt in range(4):  # the row may vanish between the two statements (a released claim)
            with self._transaction("claiming a window") as conn:
                if conn.execute(self._statement("claim"), params).rowcount == 1:
                    return Claim(job, model, window, origin, token, fresh=True, claimed_at=now)
            with self._transaction("claiming a window") as conn:
                taken = conn.execute(self._statement("take_over_claim"), takeover).rowcount
                holder = conn.execute(self._statement("claim_holder"), self._key(job, window)).one_or_none()
            if taken == 1:
                return Claim(job, model, window, origin, token, fresh=holder.status == "running", claimed_at=now,
                             took_over=takeover["dead_claim"])
            if holder is not None and takeover["dead_claim"] is None and dead_local_claim(holder.claimed_by):
                takeover["dead_claim"] = holder.claimed_by  # and claim again, matching exactly that claim
                continue
            if holder is not None:
                break
        if holder is None:
            raise EvaljobsError(f"job {job!r}: could not claim window {_iso(window.start)}..{_iso(window.end)} "
                                "(its row keeps appearing and vanishing)", "try again")
        return Holder(holder.status, holder.claimed_by, _as_datetime(holder.claimed_at),
                      _as_datetime(holder.finished_at))

    def release(self, claim: Claim) -> None:
        """Give a claim up without a result: the window is as it was before the claim."""
        params = self._key(claim.job, claim.window) | {"claimed_by": claim.token}
        with self._transaction("releasing a claim") as conn:
            conn.execute(self._statement("drop_new_claim"), params)
            conn.execute(self._statement("release_claim"), params)

    # ---- results ----------------------------------------------------------------------------
    def finish(self, claim: Claim, result: JobResult, success_timestamp: float, finished_at: datetime,
               push: bool) -> None:
        """Write a run's result -- job row and every version row -- in one transaction.

        ``success_timestamp`` goes into the stored metrics (``evaljobs_last_success_timestamp_seconds``);
        ``push`` marks the rows ``pending`` for :meth:`push_pending`, else ``none``.
        """
        window = result.window
        status = job_status(result)
        groups = exposition.groups(result, success_timestamp)
        job_families = next(families for key, families in groups if "model_version" not in key)
        version_families = {key["model_version"]: families for key, families in groups if "model_version" in key}
        common = self._key(claim.job, window) | {
            "model": result.model,
            "evaluated_at": self._t(window.evaluated_at),
            "labels_as_of": self._t(window.labels_as_of),
            "origin": claim.origin,
            "status": status,
            "started_at": self._t(result.started_at),
            "finished_at": self._t(finished_at),
            "duration_seconds": result.duration_seconds,
            "push_status": "pending" if push else "none",
            "error": "; ".join(str(p) for p in result.problems) or None,
        }
        summary = {k: v for k, v in result.to_dict().items() if k != "versions"}
        summary["versions"] = [v.model_version for v in result.versions]
        job_row = common | {
            "claimed_by": claim.token,
            "window_predictions": sum(v.window_predictions for v in result.versions),
            "labeled_predictions": sum(v.labeled_predictions for v in result.versions),
            "result": json.dumps(summary, sort_keys=True),
            "exposition": exposition_text(job_families),
        }
        version_rows = []
        for version in result.versions:
            metrics = version.metrics
            version_rows.append(common | {
                "model_version": version.model_version,
                "evaluations": 1,
                "window_predictions": version.window_predictions,
                "labeled_predictions": version.labeled_predictions,
                "accuracy": metrics.accuracy if metrics else None,
                "macro_recall": metrics.macro.recall if metrics else None,
                "macro_f1": metrics.macro.f1 if metrics else None,
                "roc_auc": version.scores.roc_auc if version.scores else None,
                "result": json.dumps(version.to_dict(), sort_keys=True),
                "exposition": exposition_text(version_families[version.model_version]),
            })
        job_row["keep_push"] = 0 if push else 1
        with self._transaction("writing a result") as conn:
            kept: dict[str, Any] = {}
            if not push:  # a backfill: the gateway's view of this window stays as it was (finish_job.sql)
                kept = {r.model_version: r for r in conn.execute(self._statement("window_push_states"),
                                                                 self._key(claim.job, window))}
            for row in version_rows:
                old = kept.get(row["model_version"])
                row.update(push_status=old.push_status if old else row["push_status"],
                           push_attempts=old.push_attempts if old else 0,
                           pushed_at=old.pushed_at if old else None, push_error=old.push_error if old else None)
            if conn.execute(self._statement("finish_job"), job_row).rowcount != 1:
                raise ClaimLost(f"job {claim.job!r} window {_iso(window.start)}..{_iso(window.end)}: the claim "
                                "expired and another process took the window over; this run's result was discarded",
                                "raise results.claim_expiry above the longest run")
            conn.execute(self._statement("delete_versions"), self._key(claim.job, window))
            if version_rows:
                conn.execute(self._statement("insert_version"), version_rows)

    def fail(self, claim: Claim, error: str, started_at: datetime, finished_at: datetime) -> None:
        """Record that a run failed; an earlier result of the window is kept."""
        params = self._key(claim.job, claim.window) | {
            "claimed_by": claim.token, "origin": claim.origin, "error": error,
            "started_at": self._t(started_at), "finished_at": self._t(finished_at),
            "duration_seconds": (finished_at - started_at).total_seconds(),
        }
        with self._transaction("recording a failed run") as conn:
            conn.execute(self._statement("fail_job"), params)

    # ---- what the scheduler needs -------------------------------------------------------------
    def done_fire_times(self, job: str, since: datetime, until: datetime) -> set[datetime]:
        """Evaluation times of the job's finished windows in ``[since, until]``."""
        params = {"job": job, "since": self._t(since), "until": self._t(until)}
        with self._transaction("reading finished windows") as conn:
            return {_as_datetime(row.evaluated_at) for row in conn.execute(self._statement("done_fire_times"), params)}

    def history(self, job: str) -> tuple[datetime | None, bool]:
        """``(latest finished evaluation time, whether the job has any row)``."""
        with self._transaction("reading a job's history") as conn:
            row = conn.execute(self._statement("job_history"), {"job": job}).one()
        return _as_datetime(row.last_done), row.last_any is not None

    # ---- pushes -----------------------------------------------------------------------------
    def push_pending(self, job: str, push: Callable[[dict[str, str], list[Metric]], None],
                     now: datetime) -> PushReport:
        """Push the newest pending result of every group of ``job`` (see the module docstring).

        ``push(grouping_key, families)`` delivers one group (e.g. ``PushgatewaySink.push_group``).
        Stops at the first failed push, records its error, and raises its SinkError; what was
        not pushed stays pending for the next run. Serialised per job between processes, so
        an older window is never pushed after a newer one.
        """
        report = PushReport()
        with self._push_lock(job):
            with self._transaction("reading pending pushes") as conn:
                rows = list(conn.execute(self._statement("pending_pushes"), {"job": job, "now": self._t(now)}))
            for index, row in enumerate(rows):
                window_start, window_end = _as_datetime(row.window_start), _as_datetime(row.window_end)
                mark = {"job": job, "row_kind": row.row_kind, "model_version": row.model_version,
                        "window_start": self._t(window_start), "window_end": self._t(window_end)}
                if row.superseded:
                    self._mark(mark, "superseded", None, None, attempted=0)
                    report.superseded += 1
                    continue
                key = {"model": row.model}
                if row.row_kind == "version":
                    key["model_version"] = row.model_version
                try:
                    push(key, families_from_text(row.exposition))
                except SinkError as exc:
                    self._mark(mark, "pending", None, str(exc), attempted=1)
                    remaining = sum(1 for r in rows[index:] if not r.superseded)
                    stored = f"{remaining} result(s) of job {job!r} are stored and will be pushed at its next run"
                    raise SinkError(exc.message, f"{exc.hint}; {stored}" if exc.hint else stored) from None
                self._mark(mark, "pushed", now, None, attempted=1)
                report.pushed.append((key, window_start, window_end))
        return report

    def _mark(self, key: dict[str, Any], status: str, pushed_at: datetime | None, error: str | None,
              attempted: int) -> None:
        params = key | {"push_status": status, "pushed_at": self._t(pushed_at), "push_error": error,
                        "attempted": attempted}
        with self._transaction("recording a push") as conn:
            conn.execute(self._statement("mark_push"), params)

    @contextmanager
    def _push_lock(self, job: str) -> Iterator[None]:
        """Mutual exclusion of :meth:`push_pending` for one job, across threads and processes."""
        with self._local_push_lock:
            if self.spec.push_lock == "advisory":
                key = int.from_bytes(hashlib.sha256(f"evaljobs-push:{job}".encode()).digest()[:8], "big", signed=True)
                with connection(self.engine, "results store: locking pushes") as conn:
                    conn.execute(self._statement("advisory_lock"), {"key": key})
                    conn.commit()
                    try:
                        yield
                    finally:
                        conn.execute(self._statement("advisory_unlock"), {"key": key})
                        conn.commit()
            elif self.spec.push_lock == "file" and self.engine.url.database not in (None, "", ":memory:"):
                # An embedded database lives on one host: a lock file beside it serialises processes.
                path = Path(str(self.engine.url.database) + ".push-lock")
                with open(path, "a+b") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(handle, fcntl.LOCK_UN)
            else:
                yield

    # ---- stored summaries (issue 9) -------------------------------------------------------------
    def summaries(self, job: str, kind: str) -> dict[str, Summary]:
        """The job's stored summaries of ``kind``, by key."""
        with self._transaction("reading stored summaries") as conn:
            rows = conn.execute(self._statement("summaries_read"), {"job": job, "kind": kind})
            return {row.summary_key: Summary(row.summary_key, row.fingerprint, row.as_of, row.payload)
                    for row in rows}

    def all_summaries(self, job: str) -> dict[str, dict[str, Summary]]:
        """The job's stored summaries of every kind (kind -> key -> summary), in one statement."""
        out: dict[str, dict[str, Summary]] = {}
        with self._transaction("reading stored summaries") as conn:
            for row in conn.execute(self._statement("summaries_read_job"), {"job": job}):
                out.setdefault(row.kind, {})[row.summary_key] = Summary(row.summary_key, row.fingerprint, row.as_of,
                                                                        row.payload)
        return out

    def save_summaries(self, job: str, kind: str, written: Sequence[Summary], touched: Sequence[str], as_of: str,
                       now: datetime, stale_before: datetime,
                       touched_ranges: Sequence[tuple[str, str, str]] = ()) -> None:
        """In one transaction: move the ``touched`` keys' as_of to ``as_of`` (found unchanged
        since), and those of each ``touched_ranges`` entry ``(old as_of, first key, last key)``
        -- every summary of the kind at that as_of with a key in that range -- in one statement
        each; replace the ``written`` summaries; drop the kind's summaries unused since ``stale_before``."""
        self.save_summary_batches(job, [SummaryBatch(kind, written, touched, as_of, now, stale_before,
                                                     touched_ranges)])

    def save_summary_batches(self, job: str, batches: Sequence["SummaryBatch"]) -> None:
        """Several kinds' :meth:`save_summaries` in ONE transaction (one commit per run)."""
        with self._transaction("writing stored summaries") as conn:
            for batch in batches:
                stamp = iso(batch.now)
                base = {"job": job, "kind": batch.kind}
                # Before the writes: a written key inside a range gets its new row, not a touch.
                for old_as_of, first_key, last_key in batch.touched_ranges:
                    conn.execute(self._statement("summary_touch_range"), base | {
                        "old_as_of": old_as_of, "first_key": first_key, "last_key": last_key, "as_of": batch.as_of,
                        "updated_at": stamp})
                if batch.written:
                    conn.execute(self._statement("summary_delete"),
                                 [base | {"summary_key": s.key} for s in batch.written])
                    conn.execute(self._statement("summary_insert"), [
                        base | {"summary_key": s.key, "fingerprint": s.fingerprint, "as_of": s.as_of,
                                "payload": s.payload, "updated_at": stamp} for s in batch.written])
                if batch.touched:
                    conn.execute(self._statement("summary_touch"), [
                        base | {"summary_key": key, "as_of": batch.as_of, "updated_at": stamp}
                        for key in batch.touched])
                conn.execute(self._statement("summaries_prune"), base | {"stale_before": iso(batch.stale_before)})

    def clear_summaries(self, job: str) -> None:
        """Forget every stored summary of ``job``: its next run recomputes everything."""
        with self._transaction("clearing stored summaries") as conn:
            conn.execute(self._statement("summaries_clear"), {"job": job})

    # ---- reading ------------------------------------------------------------------------------
    def rows(self, job: str | None = None) -> list[dict[str, Any]]:
        """Every row (of one job), oldest window first: for ``evaljobs results`` and the tests."""
        self.ensure_schema()
        with connection(self.engine, "results store: reading results") as conn:
            result = conn.execute(self._statement("all_rows"), {"job": job})
            out = []
            for row in result.mappings():
                item = dict(row)
                for name in ("window_start", "window_end", "evaluated_at", "labels_as_of", "claimed_at",
                             "started_at", "finished_at", "pushed_at"):
                    item[name] = _as_datetime(item[name])
                out.append(item)
            return out


    def report_rows(self, job: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """A job's finished rows whose window ends in ``(since, until]``, oldest window first,
        each with its stored record parsed (``record``; None for a failed window)."""
        self.ensure_schema()
        params = {"job": job, "since": self._t(since), "until": self._t(until)}
        with connection(self.engine, "results store: reading results for a report") as conn:
            out = []
            for row in conn.execute(self._statement("report_rows"), params).mappings():
                item = dict(row)
                for name in ("window_start", "window_end", "evaluated_at", "labels_as_of"):
                    item[name] = _as_datetime(item[name])
                item["record"] = json.loads(item.pop("result")) if item["result"] else None
                out.append(item)
            return out


def migrations() -> list[tuple[int, str]]:
    """``(version, file name without .sql)`` of every file in ``sql/migrations/``, ascending."""
    found = []
    for path in (sqlfiles.sql_directory() / "migrations").glob("*.sql"):
        match = re.match(r"^(\d+)_[A-Za-z0-9_]+$", path.stem)
        if match:
            found.append((int(match.group(1)), path.stem))
    return sorted(found)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]
