"""The Python callables behind the DAG's non-job tasks: stage the run's inputs, gate on accuracy,
register the model, notify the team. Each reads its inputs from upstream results, never by
recomputing names, and fails with one clear message rather than a traceback where input is at fault.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline import backend, gate
from churn_pipeline.job_requests import model_package_request
from churn_pipeline.layout import RunLayout, run_key
from churn_pipeline.notifications import Notification, notify_once
from churn_pipeline.objectstore import ObjectStoreError, is_s3_uri, upload_tree
from churn_pipeline.settings import PROJECT_DIR, SAMPLE_DATA_FILE, SCRIPTS_DIR, Settings, load_settings

STAGE_TASK = "stage_inputs"
JOB_TASKS = ("preprocess", "train", "evaluate")
GATE_TASK = "check_accuracy"
FAILURE_KEY = "failure"
DECISION_KEY = "decision"
REASON_PIPELINE_FAILED = "pipeline_failed"

log = logging.getLogger(__name__)  # Airflow 3 routes standard logging into the task log


def pull_result(ti: Any, task_id: str) -> dict[str, Any]:
    """An upstream task's result; its absence is a broken run, not something a retry fixes."""
    result = ti.xcom_pull(task_ids=task_id)
    if not isinstance(result, dict):
        raise AirflowFailException(f"no result from task '{task_id}' in this run; run it (or clear it) first")
    return result


def _plain_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_DIR / path


def _stage_code(store: Any, layout: RunLayout) -> None:
    """The scripts as the jobs get them: loose files for processing, sourcedir.tar.gz for training."""
    from churn_pipeline.local_runner import deterministic_tar  # run time only: keeps parsing light

    for script in sorted(SCRIPTS_DIR.glob("*.py")):
        store.upload_file(script, f"{layout.code_uri}/{script.name}")
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS_DIR))


def _stage_input(settings: Settings, store: Any, layout: RunLayout, value: str) -> str:
    if is_s3_uri(value):
        try:
            present = store.exists(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"input_uri: {error}") from None
        if not present and settings.backend == "local" and value == settings.default_input_uri:
            store.upload_file(SAMPLE_DATA_FILE, value)
            log.info("the local store had no default input; seeded %s with the bundled sample %s",
                     value, SAMPLE_DATA_FILE)
        elif not present:
            raise AirflowFailException(f"input_uri: no object at {value}; upload the customer CSV there first")
        return value
    if settings.backend != "local":
        raise AirflowFailException(f"input_uri must be an s3:// URI on the sagemaker backend, got {value!r}")
    path = _plain_path(value)
    if path.is_file():
        store.upload_file(path, f"{layout.input_uri}/{path.name}")
    elif path.is_dir():
        if not upload_tree(store, path, layout.input_uri):
            raise AirflowFailException(f"input_uri: the folder {path} is empty")
    else:
        raise AirflowFailException(f"input_uri: no file or folder at {path}")
    log.info("staged the input %s at %s", path, layout.input_uri)
    return layout.input_uri


def _stage_schema(store: Any, layout: RunLayout, value: str) -> str:
    if is_s3_uri(value):
        try:
            raw = store.read_bytes(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"schema_uri: {error}") from None
        uri = value
    else:
        path = _plain_path(value)
        if not path.is_file():
            raise AirflowFailException(f"schema_uri: no schema file at {path}")
        raw = path.read_bytes()
        uri = layout.schema_uri
    try:
        schema = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AirflowFailException(f"schema_uri: {value} is not valid JSON ({error})") from None
    if not isinstance(schema, dict) or "target" not in schema:
        raise AirflowFailException(f"schema_uri: {value} is not a churn schema (no 'target'); see include/config/")
    if uri != value:
        store.write_bytes(uri, raw)
    return uri


def stage_run_inputs(*, params: dict[str, Any], dag_run: Any, ti: Any, **context: Any) -> dict[str, Any]:
    """Fix the run's key, ship the code, check and stage input and schema, resolve the image: all
    before any paid job starts."""
    settings = load_settings()
    if settings.backend == "sagemaker":
        missing = [name for name, value in (("CHURN_ROLE_ARN", settings.role_arn),
                                            ("CHURN_SNS_TOPIC_ARN", settings.sns_topic_arn)) if not value]
        if missing:
            raise AirflowFailException(f"the sagemaker backend needs {' and '.join(missing)}; see the README's settings")
    key = run_key(context.get("logical_date"), dag_run.run_after)
    layout = RunLayout(settings.base_uri, key)
    store = backend.object_store(settings)
    try:
        _stage_code(store, layout)
        input_uri = _stage_input(settings, store, layout, str(params["input_uri"]).strip())
        schema_uri = _stage_schema(store, layout, str(params["schema_uri"]).strip())
    except OSError as error:
        raise AirflowFailException(f"cannot stage the run's inputs under {settings.base_uri}: "
                                   f"{error.strerror or error} ({error.filename or ''})") from None
    try:
        image_uri = backend.container_image(settings)
    except ValueError as error:
        raise AirflowFailException(f"cannot resolve the scikit-learn image ({error}); set CHURN_FRAMEWORK_VERSION "
                                   "to a supported version or CHURN_IMAGE_URI") from None
    staged = {
        "run_key": key,
        "run_uri": layout.run_uri,
        "input_uri": input_uri,
        "schema_uri": schema_uri,
        "code_uri": layout.code_uri,
        "image_uri": image_uri,
    }
    log.info("run %s stages under %s", key, layout.run_uri)
    return staged


def choose_branch(*, params: dict[str, Any], ti: Any, **_: Any) -> str:
    """BranchPythonOperator callable: ``register_model`` on a pass, ``notify_failure`` otherwise."""
    settings = load_settings()
    evaluation_uri = f"{pull_result(ti, 'evaluate')['outputs']['evaluation']}/evaluation.json"
    try:
        raw: bytes | None = backend.object_store(settings).read_bytes(evaluation_uri)
    except ObjectStoreError:
        raw = None
    try:
        decision = gate.decide(raw, params["accuracy_threshold"], evaluation_uri)
    except ValueError as error:
        raise AirflowFailException(str(error)) from None
    ti.xcom_push(key=DECISION_KEY, value=decision.to_dict())
    log.info("gate: %s -> %s", decision.detail, decision.next_task)
    return decision.next_task


def register_model_version(*, params: dict[str, Any], ti: Any, dag_run: Any, **context: Any) -> dict[str, Any]:
    decision = ti.xcom_pull(task_ids=GATE_TASK, key=DECISION_KEY)
    if not decision or not decision.get("passed"):
        raise AirflowFailException("register_model needs a passing gate decision from check_accuracy in this run")
    settings = load_settings()
    staged = pull_result(ti, STAGE_TASK)
    train = pull_result(ti, "train")
    layout = RunLayout(settings.base_uri, staged["run_key"])
    moment = context.get("logical_date") or dag_run.run_after
    request = model_package_request(
        settings, layout, image_uri=staged["image_uri"], model_artifact_uri=train["outputs"]["model"],
        metrics=decision["metrics"], run_id=dag_run.run_id, logical_date=moment.isoformat(),
        data_source=str(params["input_uri"]), training_job=train["job_name"])
    version = backend.model_registry(settings).register(request)
    log.info("%s version %s of %s (%s, %s)", "registered" if version.created else "found this run's",
                version.version, settings.model_package_group, version.approval_status, version.identifier)
    return version.to_dict()


def _failed_upstream(ti: Any, dag_run: Any) -> list[tuple[str, str]]:
    """(task id, reason) for every task of this run that failed before the gate could decide."""
    states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(dag_run.run_id, {})
    failed = []
    for task_id in (STAGE_TASK, *JOB_TASKS, GATE_TASK):
        if states.get(task_id) == "failed":
            detail = ti.xcom_pull(task_ids=task_id, key=FAILURE_KEY)
            failed.append((task_id, detail["reason"] if detail else "see the task's log"))
    return failed


def notify_team(*, params: dict[str, Any], ti: Any, dag_run: Any, **_: Any) -> dict[str, Any]:
    """Tell the team once why this run registered nothing; a rejected model also fails this task so
    the run does not read as a plain success."""
    settings = load_settings()
    staged = ti.xcom_pull(task_ids=STAGE_TASK) or {}
    key = staged.get("run_key") or run_key(None, dag_run.run_after)
    layout = RunLayout(settings.base_uri, key)
    decision = ti.xcom_pull(task_ids=GATE_TASK, key=DECISION_KEY)
    if decision and decision["passed"]:
        raise AirflowFailException("notify_failure ran although the gate passed; nothing to notify")
    if decision:
        notification = Notification(
            reason=decision["reason"],
            subject=f"Churn model not registered: {decision['detail']}"[:100],
            message=(f"Run {dag_run.run_id} registered no model: {decision['detail']}. "
                     f"Evaluation: {decision['evaluation_uri']}"),
            run_id=dag_run.run_id, run_key=key, accuracy=decision["accuracy"], threshold=decision["threshold"],
            evaluation_uri=decision["evaluation_uri"])
    else:
        failed = _failed_upstream(ti, dag_run)
        listed = "; ".join(f"{task}: {reason}" for task, reason in failed) or "an upstream task did not succeed"
        notification = Notification(
            reason=REASON_PIPELINE_FAILED,
            subject=f"Churn pipeline failed at {', '.join(task for task, _ in failed) or 'an upstream task'}"[:100],
            message=f"Run {dag_run.run_id} failed before the quality gate. {listed}",
            run_id=dag_run.run_id, run_key=key, threshold=float(params["accuracy_threshold"]),
            failed_tasks=tuple(task for task, _ in failed))
    store = backend.object_store(settings)
    sent = notify_once(notification, backend.notification_channel(settings), store,
                       layout.notification_marker_uri(notification.reason), log.info)
    if decision:
        raise AirflowFailException(f"model not registered: {decision['detail']} (team notified)")
    return {"reason": notification.reason, "sent": sent}
