"""The scoring DAG's non-job tasks: stage the customers for the champion, publish the scores, and tell
the team when a scoring run fails.

``stage_customers`` fixes the run's key, finds the champion (none approved: the run fails here, before
any job, saying how to approve one), reads the customer table, checks it has every column the
champion was trained on (naming the missing ones), drops duplicate rows and repeated ids (counted),
and writes one JSON line per customer, missing cells as ``null`` (the model imputes them; nobody is
dropped for a blank cell). ``publish_scores`` turns the transform's joined output into the scores
table (id, probability, risk band, model version, the action at the model's stored threshold, the
value at risk, the three strongest reasons with their signed contributions) and ``summary.json``
(customers per band, the 20 most at risk, how many to contact and the expected profit of contacting
them), and logs both.

Reasons add up: ``base_value`` + the three drivers' contributions + ``other_contributions`` equal
the probability (to the six decimals written). The value at risk is the probability x the customer's
value (the schema's ``value_column``; blank without one) x ``CHURN_VALUE_HORIZON_PERIODS``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.layout import ScoringLayout, run_key
from churn_pipeline.domain.s3_uris import is_s3_uri
from churn_pipeline.domain.settings import PROJECT_DIR, Settings, SettingsError, load_settings
from churn_pipeline.domain.xcom_keys import FAILURE_KEY
from churn_pipeline.tasks._run import failed_upstream, log, received, received_optional

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import ModelVersionRef, StagedScoring
    from churn_pipeline.services.objectstore import ObjectStore


TOP_CUSTOMERS = 20
SCORES_HEADER = ("churn_probability", "risk_band", "model_version", "action", "value_at_risk", "base_value",
                 "driver_1", "contribution_1", "driver_2", "contribution_2", "driver_3", "contribution_3",
                 "other_contributions")
CONTACT, DO_NOT_CONTACT = "contact", "do not contact"
REASON_SCORING_FAILED = "scoring_failed"
APPROVE_HINT = ("approve one with `make approve VERSION=N` (the customer_churn_approval DAG) or `.venv/bin/churn "
                "approve N` (locally), or in SageMaker's model registry (on AWS)")


def _fail(ti: Any, message: str) -> AirflowFailException:
    """A failure the notification quotes: recorded for notify_failure, raised without a retry."""
    from churn_pipeline.domain.payloads import JobFailure

    ti.xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=ti.task_id, reason=message).to_xcom())
    return AirflowFailException(message)


def champion_schema(store: ObjectStore, champion: ModelVersionRef) -> dict[str, Any]:
    """The data contract the champion was trained under: ``schema.json`` inside its model.tar.gz."""
    with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
        archive = Path(scratch) / "model.tar.gz"
        store.fetch(champion.model_uri, archive)
        with tarfile.open(archive) as bundle:
            member = bundle.extractfile("schema.json")
            if member is None:
                raise ValueError(f"{champion.model_uri} holds no schema.json")
            schema: dict[str, Any] = json.loads(member.read())
            return schema


def _read_table(paths: list[Path]) -> Any:
    """The customer table as text cells (CSV) or as stored (Parquet); blank text cells are missing."""
    import pandas as pd

    frames = []
    for path in paths:
        if path.suffix.lower() == ".parquet":
            frames.append(pd.read_parquet(path))
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            frame.columns = [str(name).strip() for name in frame.columns]
            frames.append(frame.apply(lambda column: column.str.strip()).replace("", None))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_customers(settings: Settings, store: ObjectStore, input_uri: str, scratch: Path) -> Any:
    from churn_pipeline.services.objectstore import download

    if is_s3_uri(input_uri):
        files = download(store, input_uri, scratch)
    elif settings.backend == "local":
        path = Path(input_uri).expanduser()
        path = path if path.is_absolute() else PROJECT_DIR / path
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
    else:
        raise ValueError(f"input_uri must be an s3:// URI on the sagemaker backend, got {input_uri!r}")
    tables = [path for path in files if path.is_file() and path.suffix.lower() in (".csv", ".parquet")]
    if not tables:
        raise ValueError(f"no customer table (.csv or .parquet) at {input_uri}")
    return _read_table(tables)


def _cell(value: Any) -> Any:
    """A JSON-ready cell: numbers stay numbers, missing is null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value


def stage_scoring_inputs(*, params: dict[str, Any], ti: Any, dag_run: Any, **context: Any) -> dict[str, Any]:
    from churn_pipeline.domain.payloads import StagedScoring
    from churn_pipeline.services import backend
    from churn_pipeline.services.objectstore import ObjectStoreError

    settings = load_settings()
    if settings.backend == "sagemaker":
        try:
            settings.require_sagemaker_resources()
        except SettingsError as error:
            raise _fail(ti, str(error)) from None
    key = run_key(context.get("logical_date"), dag_run.run_after)
    layout = ScoringLayout(settings.base_uri, key)
    store = backend.object_store(settings)
    champion = backend.model_registry(settings).champion(settings.model_package_group)
    if champion is None:
        raise _fail(ti, f"no approved model of {settings.model_package_group}; {APPROVE_HINT}")
    input_uri = str(params["input_uri"]).strip()
    try:
        schema = champion_schema(store, champion)
        with tempfile.TemporaryDirectory(prefix="customers-") as scratch:
            table = read_customers(settings, store, input_uri, Path(scratch))
    except (ObjectStoreError, OSError, ValueError, tarfile.TarError) as error:
        raise _fail(ti, f"cannot read what scoring needs: {error}") from None
    id_column = schema.get("id_column")
    needed = ([id_column] if id_column else []) + list(schema.get("numeric", [])) + list(schema.get("categorical", []))
    missing = [name for name in needed if name not in table.columns]
    if missing:
        found = ", ".join(map(str, table.columns))
        raise _fail(ti, f"the customer table at {input_uri} lacks column(s) the champion (version "
                        f"{champion.version}) needs: {', '.join(missing)}; it has: {found}")
    customers = table[needed]
    unique = customers.drop_duplicates()
    if id_column:
        unique = unique[~(unique[id_column].notna() & unique.duplicated(subset=[id_column], keep="first"))]
    dropped = len(customers) - len(unique)
    lines = (json.dumps({name: _cell(value) for name, value in zip(needed, row, strict=True)})
             for row in unique.itertuples(index=False, name=None))
    store.write_bytes(layout.input_file_uri, "".join(line + "\n" for line in lines).encode())
    log.info("scoring %d customer(s) of %s with the champion, version %s (%s); %d duplicate row(s) or id(s) dropped",
             len(unique), input_uri, champion.version, champion.identifier, dropped)
    return StagedScoring(run_key=key, image_uri=backend.container_image(settings), input_uri=layout.input_uri,
                         customers=len(unique), dropped_duplicates=dropped, id_column=id_column,
                         champion=champion).to_xcom()


def scores_from_transform(lines: list[str], id_column: str | None, settings: Settings,
                          version: int) -> list[dict[str, Any]]:
    """One score per joined output line: the customer's id, the probability, its band, the version, the
    action, the value at risk and the reasons."""
    from churn_pipeline.domain.contract import PREDICTION_KEYS as KEYS
    from churn_pipeline.requests.transform import TRANSFORM_OUTPUT_KEY

    scores = []
    for number, line in enumerate(lines, start=1):
        joined = json.loads(line)
        prediction = joined[TRANSFORM_OUTPUT_KEY]
        probability = float(prediction[KEYS["probability"]])
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"line {number} of the transform output has a probability of {probability}")
        value = prediction.get(KEYS["value"])
        drivers = [(str(item["feature"]), float(item["contribution"])) for item in prediction.get(KEYS["drivers"], [])]
        base = float(prediction.get(KEYS["base_value"], 0.0))
        scores.append({"id": joined.get(id_column) if id_column else number, "churn_probability": probability,
                       "risk_band": settings.risk_band(probability), "model_version": version,
                       "contact": bool(prediction.get(KEYS["contact"], False)),
                       "expected_profit": float(prediction.get(KEYS["expected_profit"], 0.0)),
                       "value_at_risk": None if value is None else probability * float(value)
                       * settings.value_horizon_periods,
                       "base_value": base, "drivers": drivers,
                       "other_contributions": probability - base - sum(share for _, share in drivers)})
    return scores


def scores_csv(scores: list[dict[str, Any]], id_column: str | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([id_column or "row", *SCORES_HEADER])
    for score in sorted(scores, key=lambda item: item["churn_probability"], reverse=True):
        drivers = [cell for name, share in score["drivers"] for cell in (name, f"{share:+.6f}")]
        drivers += [""] * (6 - len(drivers))
        at_risk = score["value_at_risk"]
        writer.writerow([score["id"], f"{score['churn_probability']:.6f}", score["risk_band"], score["model_version"],
                         CONTACT if score["contact"] else DO_NOT_CONTACT, "" if at_risk is None else f"{at_risk:.2f}",
                         f"{score['base_value']:.6f}", *drivers, f"{score['other_contributions']:+.6f}"])
    return buffer.getvalue().encode()


def summarize(scores: list[dict[str, Any]], settings: Settings, staged: StagedScoring,
              layout: ScoringLayout) -> dict[str, Any]:
    bands = dict.fromkeys(settings.risk_bands, 0)
    for score in scores:
        bands[score["risk_band"]] += 1
    top = sorted(scores, key=lambda item: item["churn_probability"], reverse=True)[:TOP_CUSTOMERS]
    contacted = [score for score in scores if score["contact"]]
    at_risk = [score["value_at_risk"] for score in scores if score["value_at_risk"] is not None]
    campaign = {"contact": len(contacted),
                "expected_profit": round(sum(score["expected_profit"] for score in contacted), 2),
                "value_at_risk": round(sum(at_risk), 2) if at_risk else None,
                "value_horizon_periods": settings.value_horizon_periods}
    return {"run_key": staged.run_key, "campaign": campaign, "customers": len(scores),
            "dropped_duplicates": staged.dropped_duplicates,
            "model": {"version": staged.champion.version, "identifier": staged.champion.identifier},
            "risk_bands": dict(settings.risk_bands), "per_band": bands,
            "top": [{"id": item["id"], "churn_probability": round(item["churn_probability"], 6),
                     "risk_band": item["risk_band"], "action": CONTACT if item["contact"] else DO_NOT_CONTACT,
                     "drivers": [name for name, _ in item["drivers"]]} for item in top],
            "scores_uri": layout.scores_file_uri}


def publish_the_scores(*, staged: Any, scores: Any, **_: Any) -> dict[str, Any]:
    """Turn the transform job's output (``scores``: its result) into the scores table and summary of
    the scoring run ``staged``."""
    from churn_pipeline.domain.payloads import JobResult, StagedScoring
    from churn_pipeline.report.summary import scoring_lines
    from churn_pipeline.services import backend

    settings = load_settings()
    staged = received(StagedScoring, staged, "staged scoring run")
    transformed = received(JobResult, scores, "transform job's result")
    layout = ScoringLayout(settings.base_uri, staged.run_key)
    store = backend.object_store(settings)
    outputs = [uri for uri in store.list_uris(transformed.output("scores")) if uri.endswith(".out")]
    lines = [line for uri in outputs for line in store.read_bytes(uri).decode().splitlines() if line.strip()]
    try:
        scores = scores_from_transform(lines, staged.id_column, settings, staged.champion.version)
    except (KeyError, ValueError, json.JSONDecodeError) as error:
        raise AirflowFailException(f"the transform output under {transformed.output('scores')} is not usable: "
                                   f"{error}") from None
    if len(scores) != staged.customers:
        raise AirflowFailException(f"the transform returned {len(scores)} score(s) for {staged.customers} customer(s)")
    summary = summarize(scores, settings, staged, layout)
    summary["cost"] = transformed.cost  # the transform job's: billable time x instances x price per hour
    store.write_bytes(layout.scores_file_uri, scores_csv(scores, staged.id_column))
    store.write_bytes(layout.summary_file_uri, json.dumps(summary, indent=2, sort_keys=True).encode())
    log.info("what this run did:\n%s", "\n".join(scoring_lines(summary)))
    return summary


def notify_scoring_failed(*, staged: Any = None, ti: Any, task: Any, dag_run: Any, **context: Any) -> None:
    """Tell the team once that this scoring run produced no scores, and why (the failed tasks upstream
    of this one); then fail, so that the run does not read as a success (this task is its last)."""
    from churn_pipeline.domain.payloads import StagedScoring
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    settings = load_settings()
    scoring = received_optional(StagedScoring, staged)
    key = scoring.run_key if scoring else run_key(context.get("logical_date"), dag_run.run_after)
    layout = ScoringLayout(settings.base_uri, key)
    failed = failed_upstream(ti, task, dag_run)
    listed = "; ".join(f"{task}: {reason}" for task, reason in failed) or "an upstream task did not succeed"
    notification = Notification(
        reason=REASON_SCORING_FAILED,
        subject=f"Churn scoring produced no scores ({', '.join(task for task, _ in failed) or 'failed'})"[:100],
        message=f"Scoring run {dag_run.run_id} produced no scores. {listed}", run_id=dag_run.run_id, run_key=key,
        failed_tasks=tuple(task for task, _ in failed))
    notify_once(notification, backend.notification_channel(settings), backend.object_store(settings),
                layout.notification_marker_uri(notification.reason), log.info)
    raise AirflowFailException(f"scoring produced no scores: {listed} (team notified)")
