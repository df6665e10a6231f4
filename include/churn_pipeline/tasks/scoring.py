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
import json
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churn_pipeline.domain.layout import ScoringLayout, run_key, scored_champion_record_uri
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
                 "other_contributions", "holdout")
HELD_OUT = "yes"  # the holdout column of a customer the campaign must leave alone, whatever the model says
CONTACT, DO_NOT_CONTACT = "contact", "do not contact"
REASON_SCORING_FAILED = "scoring_failed"
# How each engine's champion is scored, in the words of the log and the DAG's doc
SCORED_BY = {"sklearn": "Batch Transform", "spark": "a Spark processing job"}
ASSET_TRIGGERED = "asset_triggered"  # Airflow's DagRunType of a run an asset event started
APPROVE_HINT = ("approve one with `make approve VERSION=N` (the customer_churn_approval DAG) or `.venv/bin/churn "
                "approve N` (locally), or in SageMaker's model registry (on AWS)")


def _fail(ti: Any, message: str) -> AirflowFailException:
    """A failure the notification quotes: recorded for notify_failure, raised without a retry."""
    from churn_pipeline.domain.payloads import JobFailure

    ti.xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=ti.task_id, reason=message).to_xcom())
    return AirflowFailException(message)


def champion_schema(store: ObjectStore, champion: ModelVersionRef) -> dict[str, Any]:
    """The data contract the champion was trained under: ``schema.json`` inside its model.tar.gz."""
    return champion_schema_at(store, champion.model_uri)


def champion_schema_at(store: ObjectStore, model_uri: str) -> dict[str, Any]:
    """The data contract inside the model archive at ``model_uri``."""
    with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
        archive = Path(scratch) / "model.tar.gz"
        store.fetch(model_uri, archive)
        with tarfile.open(archive) as bundle:
            member = bundle.extractfile("schema.json")
            if member is None:
                raise ValueError(f"{model_uri} holds no schema.json")
            schema: dict[str, Any] = json.loads(member.read())
            return schema


def customer_files(settings: Settings, store: ObjectStore, input_uri: str, scratch: Path) -> list[Path]:
    """The customer table's parts as local files (copied from S3), CSV or Parquet."""
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
    return tables


def stage_scoring_inputs(*, params: dict[str, Any], ti: Any, dag_run: Any, **context: Any) -> dict[str, Any]:
    from churn_pipeline.domain.engine import Engine
    from churn_pipeline.domain.payloads import StagedScoring
    from churn_pipeline.services import backend
    from churn_pipeline.services.objectstore import ObjectStoreError
    from churn_pipeline.tasks.champion import champion_engine_and_image

    settings = load_settings()
    if settings.backend == "sagemaker":
        try:
            settings.require_sagemaker_resources()
        except SettingsError as error:
            raise _fail(ti, str(error)) from None
    key = run_key(context.get("logical_date"), dag_run.run_after)
    layout = ScoringLayout(settings.base_uri, key)
    store = backend.object_store(settings)
    try:
        champion = backend.model_registry(settings).champion(settings.model_package_group)
    except ValueError as error:  # the champion's metadata names an engine this code does not know
        raise _fail(ti, f"cannot score with the champion: {error}") from None
    if champion is None:
        raise _fail(ti, f"no approved model of {settings.model_package_group}; {APPROVE_HINT}")
    try:
        engine, image_uri = champion_engine_and_image(settings, champion)
    except (SettingsError, ValueError) as error:
        raise _fail(ti, f"cannot score with the champion, version {champion.version}: {error}") from None
    if getattr(dag_run.run_type, "value", dag_run.run_type) == ASSET_TRIGGERED:
        already = already_scored(settings, store, champion)
        if already:  # the same approval's other event (Airflow's and SageMaker's EventBridge one): nothing to do
            raise AirflowSkipException(f"version {champion.version} ({champion.identifier}) is the champion and was "
                                       f"already scored by run {already.get('run_id')}; this approval event starts "
                                       "nothing (the daily run scores again)")
    input_uri = str(params["input_uri"]).strip()
    from churn_pipeline.services.customer_lines import stage_lines, table_columns

    with tempfile.TemporaryDirectory(prefix="customers-") as scratch:
        try:
            schema = champion_schema(store, champion)
            files = customer_files(settings, store, input_uri, Path(scratch) / "input")
            columns = table_columns(files)
        except (ObjectStoreError, OSError, ValueError, tarfile.TarError) as error:
            raise _fail(ti, f"cannot read what scoring needs: {error}") from None
        id_column = schema.get("id_column")
        needed = (([id_column] if id_column else []) + list(schema.get("numeric", []))
                  + list(schema.get("categorical", [])))
        missing = [name for name in needed if name not in columns]
        if missing:
            raise _fail(ti, f"the customer table at {input_uri} lacks column(s) the champion (version "
                            f"{champion.version}) needs: {', '.join(missing)}; it has: {', '.join(columns)}")
        try:  # in batches: the table is never held whole, nor its lines (services/customer_lines.py)
            staged_lines = stage_lines(files, needed, id_column, Path(scratch))
        except (OSError, ValueError) as error:
            raise _fail(ti, f"cannot read what scoring needs: {error}") from None
        if engine is Engine.SPARK:  # the Spark job reads Parquet, and its scripts come from this run's prefix
            parquet = parquet_of_lines(staged_lines.path, needed, Path(scratch) / "customers.parquet")
            store.upload_file(parquet, layout.parquet_input_file_uri)
            stage_spark_scoring_code(settings, store, layout)
        else:
            store.upload_file(staged_lines.path, layout.input_file_uri)
    log.info("scoring %d customer(s) of %s with the champion, version %s (%s), by %s; %d duplicate row(s) or "
             "id(s) dropped", staged_lines.customers, input_uri, champion.version, champion.identifier,
             SCORED_BY[engine], staged_lines.dropped)
    return StagedScoring(run_key=key, image_uri=image_uri, input_uri=layout.input_uri,
                         customers=staged_lines.customers, dropped_duplicates=staged_lines.dropped,
                         id_column=id_column, champion=champion, engine=engine.value).to_xcom()


def parquet_of_lines(lines: Path, columns: list[str], target: Path, batch_rows: int = 50_000) -> Path:
    """The staged JSON lines as one Parquet file for the Spark job, in batches (one row group each).
    Every column is text, as in the customer table's CSV: the Spark scoring reads numbers and blanks
    from text as the serving code does, so a column whose cells JSON typed differently from line to
    line (a number here, null there) cannot change what the model sees."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in columns])

    def cell(value: Any) -> str | None:
        return None if value is None else value if isinstance(value, str) else json.dumps(value)

    def table_of(rows: list[dict[str, Any]]) -> Any:
        return pa.table({name: pa.array([cell(row.get(name)) for row in rows], pa.string()) for name in columns},
                        schema=schema)

    with pq.ParquetWriter(target, schema) as writer, lines.open(encoding="utf-8") as source:
        batch: list[dict[str, Any]] = []
        for line in source:
            if line.strip():
                batch.append(json.loads(line))
            if len(batch) == batch_rows:
                writer.write_table(table_of(batch))
                batch = []
        writer.write_table(table_of(batch))  # an empty last batch still leaves a file with the schema
    return target


def stage_spark_scoring_code(settings: Settings, store: ObjectStore, layout: ScoringLayout) -> None:
    """What the Spark scoring job gets under the scoring run's code prefix, as a training run's Spark
    jobs get theirs: the script, ``--py-files`` (``churn_common.zip``) and the score cluster's
    ``configuration.json``."""
    from churn_pipeline.domain.steps import SCORE
    from churn_pipeline.requests.spark import (
        PY_FILES_ARCHIVE,
        SPARK_SCRIPTS,
        SPARK_SCRIPTS_FOLDER,
        spark_configuration_file,
    )
    from churn_pipeline.tasks.staging import SCRIPTS_DIR, py_files_archive

    script = f"{SPARK_SCRIPTS_FOLDER}/{SPARK_SCRIPTS[SCORE]}"
    store.upload_file(SCRIPTS_DIR / script, f"{layout.code_uri}/{script}")
    store.write_bytes(f"{layout.py_files_uri}/{PY_FILES_ARCHIVE}", py_files_archive())
    store.write_bytes(layout.spark_configuration_uri(SCORE), spark_configuration_file(settings, SCORE))


def already_scored(settings: Settings, store: ObjectStore, champion: ModelVersionRef) -> dict[str, Any] | None:
    """The record of the run that published scores of this champion, if one did."""
    from churn_pipeline.services.objectstore import ObjectStoreError

    uri = scored_champion_record_uri(settings.base_uri, settings.model_package_group, champion.version)
    try:
        record: dict[str, Any] = json.loads(store.read_bytes(uri))
    except ObjectStoreError:
        return None
    return record if record.get("identifier") == champion.identifier else None


def record_scored(settings: Settings, store: ObjectStore, champion: ModelVersionRef, run_id: str | None,
                  layout: ScoringLayout) -> None:
    """Note that this run published scores of ``champion`` (what ``already_scored`` reads)."""
    record = {"version": champion.version, "identifier": champion.identifier, "run_id": run_id,
              "run_key": layout.key, "scores_uri": layout.scores_file_uri}
    store.write_bytes(scored_champion_record_uri(settings.base_uri, settings.model_package_group, champion.version),
                      json.dumps(record, sort_keys=True).encode())


def score_of(line: str, number: int, id_column: str | None, settings: Settings, version: int,
             holdout_key: str | None = None) -> dict[str, Any]:
    """One joined output line's score: the customer's id, the probability, its band, the version, the
    action, the value at risk and the reasons. ``number`` counts the output's lines from 1. With
    ``holdout_key`` (the scoring run's key), the run's holdout is not contacted (domain.outcomes)."""
    from churn_pipeline.domain.contract import PREDICTION_KEYS as KEYS
    from churn_pipeline.domain.outcomes import in_holdout
    from churn_pipeline.requests.transform import TRANSFORM_OUTPUT_KEY

    joined = json.loads(line)
    prediction = joined[TRANSFORM_OUTPUT_KEY]
    probability = float(prediction[KEYS["probability"]])
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"line {number} of the transform output has a probability of {probability}")
    value = prediction.get(KEYS["value"])
    drivers = [(str(item["feature"]), float(item["contribution"])) for item in prediction.get(KEYS["drivers"], [])]
    base = float(prediction.get(KEYS["base_value"], 0.0))
    customer = joined.get(id_column) if id_column else number
    held_out = holdout_key is not None and in_holdout(holdout_key, customer, settings.holdout_share)
    return {"id": customer, "churn_probability": probability,
            "risk_band": settings.risk_band(probability), "model_version": version,
            "contact": bool(prediction.get(KEYS["contact"], False)) and not held_out, "holdout": held_out,
            "expected_profit": float(prediction.get(KEYS["expected_profit"], 0.0)),
            "value_at_risk": None if value is None else probability * float(value) * settings.value_horizon_periods,
            "base_value": base, "drivers": drivers,
            "other_contributions": probability - base - sum(share for _, share in drivers)}


def _scores_row(score: dict[str, Any]) -> list[Any]:
    drivers = [cell for name, share in score["drivers"] for cell in (name, f"{share:+.6f}")]
    drivers += [""] * (6 - len(drivers))
    at_risk = score["value_at_risk"]
    return [score["id"], f"{score['churn_probability']:.6f}", score["risk_band"], score["model_version"],
            CONTACT if score["contact"] else DO_NOT_CONTACT, "" if at_risk is None else f"{at_risk:.2f}",
            f"{score['base_value']:.6f}", *drivers, f"{score['other_contributions']:+.6f}",
            HELD_OUT if score["holdout"] else ""]


def _campaign(contacted: int, expected_profit: float, at_risk: float | None, settings: Settings) -> dict[str, Any]:
    return {"contact": contacted, "expected_profit": round(expected_profit, 2),
            "value_at_risk": None if at_risk is None else round(at_risk, 2),
            "value_horizon_periods": settings.value_horizon_periods}


def _top_entry(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "churn_probability": round(item["churn_probability"], 6),
            "risk_band": item["risk_band"], "action": CONTACT if item["contact"] else DO_NOT_CONTACT,
            "drivers": [name for name, _ in item["drivers"]]}


def _summary(customers: int, bands: dict[str, int], campaign: dict[str, Any], top: list[dict[str, Any]],
             settings: Settings, staged: StagedScoring, layout: ScoringLayout) -> dict[str, Any]:
    return {"run_key": staged.run_key, "campaign": campaign, "customers": customers,
            "dropped_duplicates": staged.dropped_duplicates,
            "model": {"version": staged.champion.version, "identifier": staged.champion.identifier},
            "risk_bands": dict(settings.risk_bands), "per_band": bands,
            "top": [_top_entry(item) for item in top], "scores_uri": layout.scores_file_uri}


class ScoredOutput:
    """The transform's output files read once, in bounded memory: per customer only its probability
    and where its line is (20 bytes, where a list of score dicts took kilobytes); the summary's sums
    and counts gathered on the way, in the order the lines come (float addition is not associative:
    the same order gives the same sums as adding up a list of every score). The
    scores table is then written in probability order by reading each line again at its offset."""

    def __init__(self, files: list[Path], id_column: str | None, settings: Settings, version: int,
                 holdout_key: str | None = None):
        from array import array

        self.files, self.id_column, self.settings, self.version = files, id_column, settings, version
        self.holdout_key, self.held_out = holdout_key, 0
        self.probabilities, self.file_of, self.offset_of = array("d"), array("i"), array("q")
        self.bands = dict.fromkeys(settings.risk_bands, 0)
        self.contacted, self.expected_profit = 0, 0
        self.at_risk: list[float] = []  # summed once at the end, in line order
        number = 0
        for index, path in enumerate(files):
            offset = 0
            with path.open("rb") as output:
                for raw in output:
                    line = raw.decode()
                    if line.strip():
                        number += 1
                        score = score_of(line, number, id_column, settings, version, holdout_key)
                        self.held_out += score["holdout"]
                        self.probabilities.append(score["churn_probability"])
                        self.file_of.append(index)
                        self.offset_of.append(offset)
                        self.bands[score["risk_band"]] += 1
                        if score["contact"]:
                            self.contacted += 1
                            self.expected_profit += score["expected_profit"]
                        if score["value_at_risk"] is not None:
                            self.at_risk.append(score["value_at_risk"])
                    offset += len(raw)

    @property
    def customers(self) -> int:
        return len(self.probabilities)

    def _order(self) -> Any:
        import numpy as np

        # descending, ties in the order the lines came: what sorted(..., reverse=True) gives
        return np.argsort(-np.frombuffer(self.probabilities, dtype=np.float64), kind="stable")

    def _scores(self, positions: Any) -> Iterator[dict[str, Any]]:
        handles = [path.open("rb") for path in self.files]
        try:
            for position in positions:
                handle = handles[self.file_of[position]]
                handle.seek(self.offset_of[position])
                yield score_of(handle.readline().decode(), int(position) + 1, self.id_column, self.settings,
                               self.version, self.holdout_key)
        finally:
            for handle in handles:
                handle.close()

    def summary(self, staged: StagedScoring, layout: ScoringLayout) -> dict[str, Any]:
        at_risk = sum(self.at_risk) if self.at_risk else None
        campaign = _campaign(self.contacted, self.expected_profit, at_risk, self.settings)
        top = list(self._scores(self._order()[:TOP_CUSTOMERS]))
        return _summary(self.customers, self.bands, campaign, top, self.settings, staged, layout)

    def write_csv(self, path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as table:
            writer = csv.writer(table, lineterminator="\n")
            writer.writerow([self.id_column or "row", *SCORES_HEADER])
            for score in self._scores(self._order()):
                writer.writerow(_scores_row(score))


def scored_output_uris(store: ObjectStore, staged: StagedScoring, job: Any, layout: ScoringLayout) -> list[str]:
    """The scoring job's joined lines: Batch Transform's ``*.out`` files under its output path, or the
    ``part-*.json`` files a Spark champion's job wrote under the run's ``spark-scores`` prefix (its
    processing job has no ProcessingOutput for them: on a cluster the executors write them)."""
    from churn_pipeline.domain.engine import Engine

    if Engine(staged.engine) is Engine.SPARK:
        return [uri for uri in store.list_uris(layout.spark_scores_uri)
                if uri.rsplit("/", 1)[-1].startswith("part-") and uri.endswith(".json")]
    return [uri for uri in store.list_uris(job.output("scores")) if uri.endswith(".out")]


def publish_the_scores(*, staged: Any, scores: Any, dag_run: Any = None, **_: Any) -> dict[str, Any]:
    """Turn the transform job's output (``scores``: its result) into the scores table and summary of
    the scoring run ``staged``, in bounded memory (``ScoredOutput``)."""
    from churn_pipeline.domain.payloads import JobResult, StagedScoring
    from churn_pipeline.report.summary import scoring_lines
    from churn_pipeline.services import backend

    settings = load_settings()
    staged = received(StagedScoring, staged, "staged scoring run")
    transformed = received(JobResult, scores, "scoring job's result")
    layout = ScoringLayout(settings.base_uri, staged.run_key)
    store = backend.object_store(settings)
    outputs = scored_output_uris(store, staged, transformed, layout)
    with tempfile.TemporaryDirectory(prefix="scores-") as scratch:
        files = []
        for index, uri in enumerate(outputs):
            files.append(Path(scratch) / f"{index:06d}.out")
            store.fetch(uri, files[-1])
        try:
            scored = ScoredOutput(files, staged.id_column, settings, staged.champion.version, staged.run_key)
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
            raise AirflowFailException(f"the scoring job's output ({', '.join(outputs) or 'no files'}) is not "
                                       f"usable: {error}") from None
        if scored.customers != staged.customers:
            raise AirflowFailException(f"the scoring job returned {scored.customers} score(s) for {staged.customers} "
                                       "customer(s)")
        summary = scored.summary(staged, layout)
        summary["cost"] = transformed.cost  # the scoring job's: billable time x instances x price per hour
        summary["scored_by"] = SCORED_BY[staged.engine]
        # what the outcome DAG needs a month later: who was held out, and what the model promised then
        summary["holdout"] = {"share": settings.holdout_share, "customers": scored.held_out}
        summary["model"].update({"model_uri": staged.champion.model_uri, "run_key": staged.champion.run_key,
                                 "metrics": dict(staged.champion.metrics)})
        table = Path(scratch) / "scores.csv"
        scored.write_csv(table)
        store.upload_file(table, layout.scores_file_uri)
    store.write_bytes(layout.summary_file_uri, json.dumps(summary, indent=2, sort_keys=True).encode())
    # after the scores: a later event of the same approval then starts nothing
    record_scored(settings, store, staged.champion, getattr(dag_run, "run_id", None), layout)
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
