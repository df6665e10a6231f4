"""``register_model``: a new model version for a model that passed the gate, once per run; and the
failure callback that tells the team when registering itself fails."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.payloads import (
    DECISION_KEY,
    GATE_TASK,
    PREPROCESS_TASK,
    REGISTER_TASK,
    STAGE_TASK,
    TRAIN_TASK,
    GateDecision,
    JobResult,
    RegisteredVersion,
    StagedInputs,
)
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.report.summary import FAILED, REGISTERED, RunOutcome
from churn_pipeline.requests.model_package import model_package_request
from churn_pipeline.services import backend
from churn_pipeline.services.notifications import Notification, notify_once
from churn_pipeline.tasks._run import data_source, finish_run, log, pull, pull_optional, run_layout

REASON_REGISTRATION_FAILED = "registration_failed"
REASON_DRIFT_WARNING = "data_drift_warning"


def register_model_version(*, params: dict[str, Any], ti: Any, dag_run: Any, **context: Any) -> dict[str, Any]:
    decision = pull_optional(ti, GATE_TASK, GateDecision, key=DECISION_KEY)
    if decision is None or not decision.passed:
        raise AirflowFailException("register_model needs a passing gate decision from check_accuracy in this run")
    settings = load_settings()
    staged = pull(ti, STAGE_TASK, StagedInputs)
    train = pull(ti, TRAIN_TASK, JobResult)
    preprocessing = pull(ti, PREPROCESS_TASK, JobResult)
    layout = RunLayout(settings.base_uri, staged.run_key)
    moment = context.get("logical_date") or dag_run.run_after
    source = data_source(ti, params)
    request = model_package_request(
        settings, layout, image_uri=staged.image_uri, model_artifact_uri=train.output("model"),
        decision=decision, profile_uri=preprocessing.output("profile"), run_id=dag_run.run_id,
        dag_id=dag_run.dag_id, logical_date=moment.isoformat(), data_source=source,
        training_job=train.job_name)
    version = backend.model_registry(settings).register(request)
    log.info("%s version %s of %s (%s, %s)", "registered" if version.created else "found this run's",
             version.version, settings.model_package_group, version.approval_status, version.identifier)
    if decision.drifted_features:  # drift_mode=warn: registered, and the reviewer hears why to look closer
        warn_of_drift(settings, layout, decision, dag_run.run_id, version)
    finish_run(settings, layout, RunOutcome(
        REGISTERED, data_source=source, group=settings.model_package_group, version=version.version,
        identifier=version.identifier, approval_status=version.approval_status))
    return version.to_xcom()


def warn_of_drift(settings: Settings, layout: RunLayout, decision: GateDecision, run_id: str,
                  version: RegisteredVersion) -> None:
    features = ", ".join(decision.drifted_features)
    notification = Notification(
        reason=REASON_DRIFT_WARNING,
        subject=f"Churn data drifted ({features}); version {version.version} registered"[:100],
        message=(f"Run {run_id} registered version {version.version} ({version.identifier}) for review, and the "
                 f"customers' data drifted from the baseline in: {features}. Report: {decision.report_uri or 'none'}"),
        run_id=run_id, run_key=layout.key, accuracy=decision.accuracy, threshold=decision.threshold,
        evaluation_uri=decision.evaluation_uri, reasons=decision.reasons, report_uri=decision.report_uri,
        drifted_features=decision.drifted_features)
    notify_once(notification, backend.notification_channel(settings), backend.object_store(settings),
                layout.notification_marker_uri(notification.reason), log.info)


def notify_registration_failed(context: Any) -> None:
    """``on_failure_callback`` of ``register_model``: a model passed the gate but could not be
    registered, which no other task reports. Runs after the last retry, at most one message a run."""
    settings = load_settings()
    ti, dag_run = context["ti"], context["dag_run"]
    layout = run_layout(settings, ti, dag_run, context.get("logical_date"))
    error = context.get("exception")
    notification = Notification(
        reason=REASON_REGISTRATION_FAILED,
        subject="Churn model passed the gate but was not registered",
        message=(f"Run {dag_run.run_id}: {REGISTER_TASK} failed after its retries: {error}. The model passed the "
                 f"gate; clear {REGISTER_TASK} to register it once the cause is fixed."),
        run_id=dag_run.run_id, run_key=layout.key, failed_tasks=(REGISTER_TASK,))
    notify_once(notification, backend.notification_channel(settings), backend.object_store(settings),
                layout.notification_marker_uri(notification.reason), log.info)
    finish_run(settings, layout, RunOutcome(FAILED, data_source=data_source(ti, context["params"]),
                                            failed={REGISTER_TASK: str(error)}))
