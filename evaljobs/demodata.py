"""Realistic synthetic data for the demo and the tests: two models, several versions, late labels.

- ``fraud`` (binary, positive label ``1``): versions ``v1`` (retired), ``v2`` (the good
  champion) and ``v3-canary`` (the last five days, 20% of traffic, visibly worse, and fed
  shifted ``amount`` inputs, so its drift shows). Scores are calibrated probabilities.
- ``intent`` (multiclass: billing, shipping, returns, tech, other): versions ``2024.1``
  (slower, with some answers over a second) and ``2024.2``; one probability column per class
  (``p_billing`` ...), calibrated: each is the exact posterior of the class given the predicted
  class and the model's evidence, so the intent estimate (``estimate:`` in schedules.yaml) is honest.
- ``eta`` (regression: delivery time in minutes, written as text in ``predicted_label`` and
  ``label``): ``eta-2`` (unbiased, a few minutes off) and ``eta-3-canary`` (the last five days,
  20% of traffic, over-predicting and noisier). Its label arrives when the order is delivered,
  or hours later when the courier's app syncs late.

Every prediction has a ``channel`` (web, app, partner) besides its ``country``, for segments.

Labels arrive hours to days after the prediction; some never arrive, a few are corrected
later (a second label row), and a few belong to no prediction (orphans). The rows are made
here in Python because this is test data; evaljobs itself never reads rows back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from evaljobs.db.dialects import dialect_of
from evaljobs.db.engine import add_columns, connect, connection, create_reference_schema, describe_engine, insert_rows

#: The demo's feature columns: name -> "float" or "text", in the engine's own type names.
FEATURES = {"amount": "float", "country": "text", "account_age_days": "float", "channel": "text"}
CHANNELS = ("web", "app", "partner")
INTENT_CLASSES = ("billing", "shipping", "returns", "tech", "other")
COUNTRIES = ("US", "GB", "DE", "FR", "IN")
INTENT_WEIGHTS = (4, 3, 2, 2, 1)
#: The intent model's per-class probability columns (``columns.class_scores`` in schedules.yaml).
INTENT_SCORE_COLUMNS = {c: f"p_{c}" for c in INTENT_CLASSES}
#: How far the intent model's evidence for the true class stands out (standard deviations).
INTENT_EVIDENCE = 1.5
FRAUD_RATE = 0.12
LOGIT_SD = 1.4


def _fraud_rows(rng: random.Random, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    span = (end - start).total_seconds()
    per_day = 1500
    count = int(per_day * span / 86400)
    for i in range(count):
        at = start + timedelta(seconds=rng.random() * span)
        age = (end - at).days
        if age >= 9:
            version = "v1" if rng.random() < 0.7 else "v2"
        elif age >= 5:
            version = "v2"
        else:
            version = "v3-canary" if rng.random() < 0.2 else "v2"
        fraud = rng.random() < FRAUD_RATE
        quality = {"v1": 1.5, "v2": 2.0, "v3-canary": 0.7}[version]
        logit = (quality if fraud else -quality) + rng.gauss(0, LOGIT_SD) - 0.6
        # The model flags logit >= 0; its score is the exact probability of fraud given the logit
        # (Bayes' rule for the two normal logit distributions), so scores are calibrated and the
        # estimate of unlabelled windows (estimate: in schedules.yaml) is honest.
        log_odds = math.log(FRAUD_RATE / (1 - FRAUD_RATE)) + 2 * quality * (logit + 0.6) / LOGIT_SD ** 2
        score = 1 / (1 + math.exp(-max(-700.0, min(700.0, log_odds))))
        amount = rng.lognormvariate(3.5 + (0.8 if fraud else 0.0), 0.9)
        if version == "v3-canary":
            amount *= 2.5  # a new upstream currency conversion: the canary's inputs drift
        yield {
            "prediction_id": f"f-{i:07d}",
            "model_name": "fraud",
            "model_version": version,
            "predicted_at": at,
            "predicted_label": "1" if logit >= 0 else "0",
            "score": round(score, 6),
            "latency_seconds": round(rng.lognormvariate(math.log(0.045), 0.5), 6),
            "amount": round(amount, 2),
            "country": rng.choices(COUNTRIES, weights=(5, 2, 2, 1, 3))[0],
            "account_age_days": round(rng.expovariate(1 / 400), 1),
            "_truth": "1" if fraud else "0",
            "_delay": timedelta(hours=rng.uniform(4, 44)),
            "_labelled": rng.random() < 0.85,
        }


def _intent_probabilities(evidence_rng: random.Random, truth: str, predicted: str, accuracy: float) -> dict[str, float]:
    """The intent model's calibrated class probabilities: the exact posterior of each class given
    the predicted class (right with probability ``accuracy``, else a uniform draw) and per-class
    evidence e_c ~ N(INTENT_EVIDENCE * [c is the truth], 1), drawn from its own generator so the
    other demo rows stay as they were. Posterior ~ prior * P(predicted | c) * exp(INTENT_EVIDENCE * e_c)."""
    evidence = {c: evidence_rng.gauss(INTENT_EVIDENCE if c == truth else 0.0, 1.0) for c in INTENT_CLASSES}
    weights = {c: w * ((accuracy if c == predicted else 0.0) + (1 - accuracy) / len(INTENT_CLASSES))
               * math.exp(INTENT_EVIDENCE * evidence[c]) for c, w in zip(INTENT_CLASSES, INTENT_WEIGHTS)}
    total = sum(weights.values())
    return {INTENT_SCORE_COLUMNS[c]: round(w / total, 6) for c, w in weights.items()}


def _intent_rows(rng: random.Random, start: datetime, end: datetime,
                 evidence_rng: random.Random) -> Iterator[dict[str, Any]]:
    span = (end - start).total_seconds()
    count = int(900 * span / 86400)
    for i in range(count):
        at = start + timedelta(seconds=rng.random() * span)
        version = "2024.1" if (end - at).days >= 6 or rng.random() < 0.3 else "2024.2"
        truth = rng.choices(INTENT_CLASSES, weights=INTENT_WEIGHTS)[0]
        accuracy = 0.86 if version == "2024.1" else 0.91
        predicted = truth if rng.random() < accuracy else rng.choice(INTENT_CLASSES)
        slow = version == "2024.1" and rng.random() < 0.04
        yield {
            **_intent_probabilities(evidence_rng, truth, predicted, accuracy),
            "prediction_id": f"i-{i:07d}",
            "model_name": "intent",
            "model_version": version,
            "predicted_at": at,
            "predicted_label": predicted,
            "score": None,
            "latency_seconds": round(rng.uniform(1.2, 2.5) if slow else rng.lognormvariate(math.log(0.18), 0.4), 6),
            "amount": None,
            "country": rng.choices(COUNTRIES, weights=(5, 2, 2, 1, 3))[0],
            "account_age_days": round(rng.expovariate(1 / 300), 1),
            "_truth": truth,
            "_delay": timedelta(hours=rng.uniform(2, 30)),
            "_labelled": rng.random() < 0.7,
        }


def _eta_rows(rng: random.Random, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    span = (end - start).total_seconds()
    count = int(1200 * span / 86400)
    for i in range(count):
        at = start + timedelta(seconds=rng.random() * span)
        canary = (end - at).days < 5 and rng.random() < 0.2
        country = rng.choices(COUNTRIES, weights=(5, 2, 2, 1, 3))[0]
        channel = rng.choices(CHANNELS, weights=(3, 5, 2))[0]
        # Partner orders and India take longer; minutes are what the customer waited.
        actual = 12 + rng.lognormvariate(math.log(22), 0.35) + (9 if channel == "partner" else 0) + (6 if country == "IN" else 0)
        if canary:
            predicted = actual * 1.12 + rng.gauss(0, 7)
        else:
            predicted = actual + rng.gauss(0, 4) + (3 if channel == "partner" else 0)
        late_sync = rng.random() < 0.15
        yield {
            "prediction_id": f"e-{i:07d}",
            "model_name": "eta",
            "model_version": "eta-3-canary" if canary else "eta-2",
            "predicted_at": at,
            "predicted_label": f"{max(predicted, 1.0):.1f}",
            "score": None,
            "latency_seconds": round(rng.lognormvariate(math.log(0.02), 0.3), 6),
            "amount": None,
            "country": country,
            "account_age_days": None,
            "channel": channel,
            "_truth": f"{actual:.1f}",
            "_delay": timedelta(minutes=actual) + (timedelta(hours=rng.uniform(1, 30)) if late_sync else timedelta(0)),
            "_labelled": rng.random() < 0.95,  # cancelled orders are never delivered
        }


def build(url: str, now: datetime, days: int = 14, seed: int = 7) -> str:
    """Replace the reference tables at ``url`` with ``days`` of synthetic history ending at ``now``."""
    rng = random.Random(seed)
    engine = connect(url, create=True)
    spec = dialect_of(engine.dialect.name)
    bind_time = spec.bind_time
    now = now.astimezone(timezone.utc)
    start = now - timedelta(days=days)
    with connection(engine, "replacing the demo tables") as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS labels"))
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
        conn.commit()
    create_reference_schema(engine)
    with connection(engine, "adding the demo feature columns") as conn:
        add_columns(conn, "predictions", {name: spec.float_type if kind == "float" else spec.text_type
                                          for name, kind in FEATURES.items()}
                    | {column: spec.float_type for column in INTENT_SCORE_COLUMNS.values()})
        conn.commit()

    prediction_columns = ["prediction_id", "model_name", "model_version", "predicted_at",
                          "predicted_label", "score", "latency_seconds", *FEATURES, *INTENT_SCORE_COLUMNS.values()]
    predictions: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    # Channels and the eta model draw from their own generators, so the fraud and intent rows
    # are the same as before they existed.
    channel_rng = random.Random(seed + 1)
    for row in [*_fraud_rows(rng, start, now), *_intent_rows(rng, start, now, random.Random(seed + 3)),
                *_eta_rows(random.Random(seed + 2), start, now)]:
        for column in INTENT_SCORE_COLUMNS.values():
            row.setdefault(column, None)
        if "channel" not in row:
            row["channel"] = channel_rng.choices(CHANNELS, weights=(3, 5, 2))[0]
        predictions.append({c: row[c] for c in prediction_columns} | {"predicted_at": bind_time(row["predicted_at"])})
        arrives = row["predicted_at"] + row["_delay"]
        if row["_labelled"] and arrives < now:
            labels.append({"prediction_id": row["prediction_id"], "label": row["_truth"],
                           "labeled_at": bind_time(arrives)})
            if row["model_name"] != "eta" and rng.random() < 0.02:
                # A correction: an analyst first got it wrong; the later row wins.
                wrong = "0" if row["_truth"] == "1" else ("1" if row["_truth"] == "0" else "other")
                labels[-1]["label"] = wrong
                labels.append({"prediction_id": row["prediction_id"], "label": row["_truth"],
                               "labeled_at": bind_time(min(arrives + timedelta(hours=3), now - timedelta(seconds=1)))})
    for i in range(25):
        labels.append({"prediction_id": f"unknown-{i}", "label": "1",
                       "labeled_at": bind_time(now - timedelta(hours=rng.uniform(1, 24 * days)))})
    with connection(engine, "writing demo data") as conn:
        insert_rows(conn, "predictions", predictions)
        insert_rows(conn, "labels", labels)
        conn.commit()
    engine.dispose()
    return (f"wrote {len(predictions):,} predictions and {len(labels):,} labels "
            f"({start:%Y-%m-%d %H:%M} .. {now:%Y-%m-%d %H:%M} UTC) to {describe_engine(engine)}")


# ---- `make demo` ----------------------------------------------------------------------------
