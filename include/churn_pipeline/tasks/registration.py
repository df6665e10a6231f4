"""``register_model``: a new model version for a model that passed the gate, once per run; and the
failure callback that tells the team when registering itself fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.tasks._run import data_source, finish_run, log, received, received_optional, run_layout
from churn_pipeline.tasks.review import announce_registration, registration_evidence

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import GateDecision, RegisteredVersion


REASON_REGISTRATION_FAILED = "registration_failed"
REASON_DRIFT_WARNING = "data_drift_warning"


def register_model_version(*, decision: Any, staged: Any, preprocessing: Any, model: Any, params: dict[str, Any],
                           ti: Any, dag_run: Any, **context: Any) -> dict[str, Any]:
    """Register the model the gate passed (``decision``), from the staged run, the preprocessing job
    (its profile) and the training job (its model)."""
    from churn_pipeline.domain.engine import Engine, model_archive_uri
    from churn_pipeline.domain.payloads import GateDecision, JobResult, StagedInputs
    from churn_pipeline.report.summary import REGISTERED, RunOutcome
    from churn_pipeline.requests.model_package import model_package_request
    from churn_pipeline.services import backend

    passed = received_optional(GateDecision, decision)
    if passed is None or not passed.passed:
        raise AirflowFailException(f"{ti.task_id} needs a passing gate decision in this run")
    decision = passed
    settings = load_settings()
    source = data_source(staged, params)
    staged = received(StagedInputs, staged, "staged run")
    train = received(JobResult, model, "training job's result")
    preprocessing = received(JobResult, preprocessing, "preprocessing job's result")
    layout = RunLayout(settings.base_uri, staged.run_key)
    moment = context.get("logical_date") or dag_run.run_after
    engine = Engine(staged.engine)
    request = model_package_request(
        settings, layout, image_uri=staged.image_uri, engine=engine,
        model_artifact_uri=model_archive_uri(train.output("model"), engine),
        decision=decision, profile_uri=preprocessing.output("profile"), run_id=dag_run.run_id,
        dag_id=dag_run.dag_id, logical_date=moment.isoformat(), data_source=source,
        training_job=train.job_name)
    version = backend.model_registry(settings).register(request)
    log.info("%s version %s of %s (%s, %s)", "registered" if version.created else "found this run's",
             version.version, settings.model_package_group, version.approval_status, version.identifier)
    # the version's review (customer_churn_review) reads its evidence from this event
    announce_registration(context.get("outlet_events"),
                          registration_evidence(settings, version, decision, dag_run.run_id, layout.key))
    if decision.drifted_features:  # drift_mode=warn: registered, and the reviewer hears why to look closer
        warn_of_drift(settings, layout, decision, dag_run.run_id, version)
    finish_run(settings, layout, RunOutcome(
        REGISTERED, data_source=source, group=settings.model_package_group, version=version.version,
        identifier=version.identifier, approval_status=version.approval_status))
    return version.to_xcom()


def warn_of_drift(settings: Settings, layout: RunLayout, decision: GateDecision, run_id: str,
                  version: RegisteredVersion) -> None:
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    features = ", ".join(decision.drifted_features)
    notification = Notification(
        reason=REASON_DRIFT_WARNING,
        # fixed words only: feature names come from data and stay in the message, neutralised
        subject=f"Churn data drifted; version {version.version} registered for review",
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
    from churn_pipeline.report.summary import FAILED, RunOutcome
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    settings = load_settings()
    task, dag_run = context["ti"].task, context["dag_run"]
    layout = run_layout(settings, _handed(task, "staged"), dag_run, context.get("logical_date"))
    error = context.get("exception")
    notification = Notification(
        reason=REASON_REGISTRATION_FAILED,
        subject="Churn model passed the gate but was not registered",
        message=(f"Run {dag_run.run_id}: {task.task_id} failed after its retries: {error}. The model passed the "
                 f"gate; clear {task.task_id} to register it once the cause is fixed."),
        run_id=dag_run.run_id, run_key=layout.key, failed_tasks=(task.task_id,))
    notify_once(notification, backend.notification_channel(settings), backend.object_store(settings),
                layout.notification_marker_uri(notification.reason), log.info)
    finish_run(settings, layout, RunOutcome(FAILED, data_source=data_source(_handed(task, "staged"), context["params"]),
                                            failed={task.task_id: str(error)}))


def _handed(task: Any, name: str) -> Any:
    """An upstream result the task was handed, as rendered for this try; None when rendering never
    got that far (the argument is then still the DAG's XComArg, not a result)."""
    value = getattr(task, "op_kwargs", {}).get(name)
    return value if isinstance(value, dict) else None
