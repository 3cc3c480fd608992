"""``evaljobs doctor JOB``: what stands between a job and a fast, correct run, one line each.

Each finding is ``ok``, ``warn`` (runs, but slower or with a caveat) or ``error`` (blocks a run)
and names its fix. Checked: the tables and columns the job maps, the timestamp columns' types,
the indexes a window scan and the label join use (with the ``CREATE INDEX`` statements), whether
labels are declared unique per prediction (and, when not, whether any prediction has several),
the server settings evaluations depend on, how late labels arrive against ``label_delay`` (with
a suggested one, see :mod:`evaljobs.quality.label_delay`), where the results store can live,
and that the Pushgateway answers.

What differs per engine comes from its entry in :data:`evaljobs.db.dialects.DIALECTS` (which
type codes are instants, whether indexes matter, which settings to show, whether it can hold
the results store); a check that does not apply to an engine says so in its line.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from dataclasses import dataclass

import sqlalchemy as sa

from evaljobs.config import Config, Job
from evaljobs.db import sqlfiles
from evaljobs.db.engine import connect, connection
from evaljobs.db.source import JobSource
from evaljobs.errors import EvaljobsError

#: Which index each table needs, by the job's column settings: the window scan filters
#: predictions by model and time; the label join looks labels up by prediction id.
NEEDED_INDEXES = (
    ("predictions", ("model_name", "predicted_at"), "predictions_model_time"),
    ("labels", ("label_prediction_id", "labeled_at"), "labels_prediction"),
)


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn" or "error"
    subject: str
    message: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.level:<5} {self.subject}: {self.message}{fix}"


def diagnose(config: Config, job: Job) -> list[Finding]:
    """Every finding for ``job``, in the order a run meets them."""
    findings: list[Finding] = []
    try:
        engine = connect(config.database)
        source = JobSource(engine, job)
        source.check_schema()
    except EvaljobsError as exc:
        # The message names the job already ("job 'x': column ... not found").
        subject, _, message = exc.message.partition(": ") if exc.message.startswith("job ") else ("database", "", exc.message)
        return [Finding("error", subject, message or exc.message, exc.hint)] + _pushgateway(config)
    findings.append(Finding("ok", "tables", f"{job.tables.predictions!r} and {job.tables.labels!r} have every "
                                            "mapped column"))
    findings += _types(source)
    with connection(engine, f"job {job.name!r}: doctor") as conn:
        findings += _indexes(conn, source)
        findings += _labels(conn, source)
        findings += _settings(conn, source)
    if not any(f.level == "error" for f in findings):  # e.g. text timestamps: no delay to measure
        findings += _label_delay(source)
    findings += _results_store(config, source)
    engine.dispose()
    return findings + _pushgateway(config)


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return schema or None, name


def _types(source: JobSource) -> list[Finding]:
    """The time columns' types, from the column layout (an empty SELECT: no reflection)."""
    job, spec, out = source.job, source.spec, []
    for table, key in ((job.tables.predictions, "predicted_at"), (job.tables.labels, "labeled_at")):
        column = getattr(job.columns, key)
        found = source.column_types(table).get(column.lower())
        if found is None:
            continue
        subject = f"{table}.{column}"
        if spec.timestamps_as_text:  # SQLite: check_schema has read the values already
            out.append(Finding("ok", subject, f"declared {found.declared or 'without a type'}; its values are "
                                              "UTC text 'YYYY-MM-DD HH:MM:SS'"))
            continue
        name, instant = spec.type_name(found.type_code), spec.timestamp_type_code(found.type_code)
        if instant:
            out.append(Finding("ok", subject, f"type {name}"))
        elif instant is None:
            out.append(Finding("ok", subject, f"the {source.dialect} driver does not say its type; not checked"))
        else:
            out.append(Finding("error", subject, f"type {name} is not a timestamp, so windows cannot be "
                                                 "compared with it", "store a TIMESTAMP (WITH TIME ZONE where "
                                                 "the engine has it), or map a view that converts it"))
    return out


def _indexes(conn: sa.Connection, source: JobSource) -> list[Finding]:
    job, out = source.job, []
    if not source.spec.uses_indexes:
        return [Finding("ok", "indexes", f"not applicable on {source.dialect} (it scans without them)")]
    inspector = sa.inspect(conn)
    for table_key, keys, index_name in NEEDED_INDEXES:
        table = getattr(job.tables, table_key)
        columns = [getattr(job.columns, key) for key in keys]
        schema, name = _split(table)
        try:
            found = [[str(c).lower() for c in index["column_names"] if c is not None]
                     for index in inspector.get_indexes(name, schema=schema)]
            found.append([c.lower() for c in inspector.get_pk_constraint(name, schema=schema)
                          .get("constrained_columns") or []])
        except Exception:  # noqa: BLE001 - a view has no indexes of its own
            out.append(Finding("ok", table, "is a view or has no index list; the tables under it need "
                                            f"an index on ({', '.join(columns)})"))
            continue
        wanted = [c.lower() for c in columns]
        # The leading column is what a lookup or range scan needs; the second makes it selective.
        if any(index[:2] == wanted for index in found):
            out.append(Finding("ok", table, f"index on ({', '.join(columns)})"))
        elif any(index[:1] == wanted[:1] for index in found):
            out.append(Finding("ok", table, f"an index starts with {columns[0]}"))
        else:
            quoted = ", ".join(source.quote(c) for c in columns)
            out.append(Finding("warn", table, f"no index starting with ({', '.join(columns)}): "
                               + ("every window reads the whole table" if table_key == "predictions"
                                  else "the label join and the orphan count scan every label"),
                               f"CREATE INDEX {index_name} ON {source.quote(table)} ({quoted});"))
    return out


def _labels(conn: sa.Connection, source: JobSource) -> list[Finding]:
    job = source.job
    if source.labels_unique:
        return [Finding("ok", job.tables.labels, "one label per prediction is declared (a unique key on "
                                                 f"{job.columns.label_prediction_id}): no latest-label ranking")]
    ids = source.identifiers()
    several = conn.execute(sa.text(sqlfiles.render("labels_with_several", ids, dialect=source.dialect))).scalar_one()
    if several:
        return [Finding("ok", job.tables.labels, f"{several} prediction id(s) have several labels: each "
                        "evaluation ranks them (the latest wins), a sort of the window")]
    return [Finding("warn", job.tables.labels, "no prediction id has two labels, but nothing declares it, so "
                    "every evaluation ranks labels (a sort of the window, ~5x the join)",
                    f"CREATE UNIQUE INDEX labels_one_per_prediction ON {ids['labels']} "
                    f"({ids['label_prediction_id']}); (keep one row per prediction by upsert)")]


def _settings(conn: sa.Connection, source: JobSource) -> list[Finding]:
    """The server settings the dialect entry names, read by ``sql/<dialect>/server_settings.sql``."""
    meaning = source.spec.server_settings
    if not meaning:
        return [Finding("ok", "settings", f"none that evaluations depend on, on {source.dialect}")]
    rows = conn.execute(sa.text(sqlfiles.render("server_settings", {}, dialect=source.dialect))).all()
    return [Finding("ok", str(name), f"{value} on the server; {meaning[str(name)]}")
            for name, value in rows if str(name) in meaning]


def _results_store(config: Config, source: JobSource) -> list[Finding]:
    """Whether the results store can live where the config puts it (Spark's tables cannot hold it)."""
    if config.results.database not in (None, config.database):
        return [Finding("ok", "results", "the results store is its own database (results.database)")]
    if source.spec.results_store:
        return [Finding("ok", "results", f"the results store lives in the job's {source.dialect} database")]
    return [Finding("error", "results", f"the results store cannot live in {source.dialect} ({source.spec.notes}); "
                                        "evaljobs run refuses, --dry-run works",
                    "set results.database to a small PostgreSQL or SQLite database, e.g. "
                    "sqlite:///evaljobs-results.db")]


def _label_delay(source: JobSource) -> list[Finding]:
    """Per version, whether label_delay catches 90% of the labels that arrive, and which would."""
    from datetime import datetime, timezone

    from evaljobs.quality.label_delay import DEFAULT_TARGET, format_duration, suggest_label_delays
    from evaljobs.windows import latest_fire_time, plan_window

    job = source.job
    now = datetime.now(timezone.utc).replace(microsecond=0)
    window = plan_window(latest_fire_time(job.schedule, now) or now, job.window, job.label_delay)
    out = []
    try:
        suggestions = suggest_label_delays(source, window)
    except EvaljobsError as exc:
        return [Finding("warn", "label_delay", f"how late labels arrive could not be measured ({exc.message})")]
    for s in suggestions:
        subject = f"label_delay ({s.model_version})"
        caught = s.share(s.within_configured, of_labeled=True)
        if s.suggested is None or caught is None:
            out.append(Finding("warn", subject, f"no labels arrived for the {s.predictions:,} predictions of the "
                                                "look-back before the latest window's end",
                               "check the label feed, or raise label_delay"))
            continue
        message = (f"{format_duration(job.label_delay)} catches {caught:.1%} of the {s.labeled:,} labels that "
                   f"arrived; {format_duration(s.suggested)} would catch "
                   f"{s.share(s.within_suggested, of_labeled=True):.1%}")
        if caught >= DEFAULT_TARGET:
            out.append(Finding("ok", subject, message))
        else:
            out.append(Finding("warn", subject, message, f"set label_delay: {format_duration(s.suggested)} "
                                                         "(evaljobs run --explain shows the look-back)"))
    return out


def _pushgateway(config: Config) -> list[Finding]:
    gateway = config.pushgateway
    if gateway is None:
        return [Finding("warn", "pushgateway", "none configured: run needs --dry-run or --textfile",
                        "set pushgateway: url in the config")]
    request = urllib.request.Request(gateway.url.rstrip("/") + "/-/ready")
    if gateway.username is not None:
        token = base64.b64encode(f"{gateway.username}:{gateway.password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=gateway.timeout_seconds) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return [Finding("error", "pushgateway", f"{_safe(gateway.url)} does not answer ({reason})",
                        "start it, or fix pushgateway.url")]
    if status != 200:
        return [Finding("error", "pushgateway", f"{_safe(gateway.url)}/-/ready answered HTTP {status}",
                        "check pushgateway.url and its credentials")]
    return [Finding("ok", "pushgateway", f"{_safe(gateway.url)} is ready")]


def _safe(url: str) -> str:
    from evaljobs.errors import redact

    return redact(url)


__all__ = ["Finding", "diagnose"]
