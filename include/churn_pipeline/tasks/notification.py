"""``notify_failure``: tell the team once why this run registered nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.xcom_keys import DECISION_KEY
from churn_pipeline.tasks._run import data_source, failed_upstream, finish_run, log, received_optional, run_layout

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import GateDecision, JobResult
    from churn_pipeline.services.notifications import Notification


REASON_PIPELINE_FAILED = "pipeline_failed"


def rejection_notice(decision: GateDecision, run_id: str, run_key: str, trained: JobResult | None) -> Notification:
    """One message for a model the gate did not pass: every reason, with the numbers and names a
    person needs to act (both models' values, the metric, the required margin, both identifiers)."""
    from churn_pipeline.domain.gate import REASON_NOT_BETTER
    from churn_pipeline.services.notifications import Notification

    challenger = (f"this run's model (training job {trained.job_name}, {trained.output('model')})" if trained
                  else "this run's model")
    lines = [f"Run {run_id} registered no model: {decision.detail}."]
    if REASON_NOT_BETTER in decision.reasons and decision.champion:
        lines.append(f"Compared on {decision.champion_metric} with a required margin of "
                     f"{decision.min_improvement:+.4f}: {challenger} against the champion, version "
                     f"{decision.champion.get('version')} ({decision.champion.get('identifier')}).")
    lines += [f"Gate: {sentence}." for sentence in decision.details]
    lines.append(f"Evaluation: {decision.evaluation_uri}")
    if decision.report_uri:
        lines.append(f"Report: {decision.report_uri}")
    codes = ", ".join(decision.reasons) or decision.reason  # reason codes only: a subject carries no text from data
    return Notification(
        reason=decision.reason, subject=f"Churn model not registered: {codes}",
        message="\n".join(lines), run_id=run_id, run_key=run_key, accuracy=decision.accuracy,
        threshold=decision.threshold, evaluation_uri=decision.evaluation_uri, reasons=decision.reasons,
        report_uri=decision.report_uri, drifted_features=decision.drifted_features,
        champion=str(decision.champion.get("identifier")) if decision.champion else None)


def _threshold(params: dict[str, Any]) -> float | None:
    """The run's threshold for the message; None when the param is not a number (the message must
    still go out: a run whose params were refused is exactly one the team must hear of)."""
    value = params.get("accuracy_threshold")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def notify_team(*, gate: str, staged: Any = None, model: Any = None, params: dict[str, Any], ti: Any, dag_run: Any,
                task: Any, **context: Any) -> dict[str, Any]:
    """Tell the team once why this run registered nothing; a rejected model also fails this task so
    the run does not read as a plain success.

    ``gate`` is the gate's task id, whose decision (if it decided) says why; ``staged`` and ``model``
    are upstream results, each None when its task did not succeed. Without a decision,
    the message lists the tasks upstream of this one that failed, and why."""
    from churn_pipeline.domain.payloads import GateDecision, JobResult
    from churn_pipeline.report.summary import FAILED, NOT_REGISTERED, RunOutcome
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    settings = load_settings()
    layout = run_layout(settings, staged, dag_run, context.get("logical_date"))
    # pulled, not handed: an XComArg of a gate that never decided would fail this task before it speaks
    decision = received_optional(GateDecision, ti.xcom_pull(task_ids=gate, key=DECISION_KEY))
    if decision and decision.passed:
        raise AirflowFailException(f"{ti.task_id} ran although the gate passed; nothing to notify")
    failed: list[tuple[str, str]] = []
    if decision:
        notification = rejection_notice(decision, dag_run.run_id, layout.key, received_optional(JobResult, model))
    else:
        failed = failed_upstream(ti, task, dag_run)
        listed = "; ".join(f"{task}: {reason}" for task, reason in failed) or "an upstream task did not succeed"
        notification = Notification(
            reason=REASON_PIPELINE_FAILED,
            subject=f"Churn pipeline failed at {', '.join(task for task, _ in failed) or 'an upstream task'}",
            message=f"Run {dag_run.run_id} failed before the quality gate. {listed}",
            run_id=dag_run.run_id, run_key=layout.key, threshold=_threshold(params),
            failed_tasks=tuple(task for task, _ in failed))
    sent = notify_once(notification, backend.notification_channel(settings), backend.object_store(settings),
                       layout.notification_marker_uri(notification.reason), log.info)
    finish_run(settings, layout, RunOutcome(NOT_REGISTERED if decision else FAILED,
                                            data_source=data_source(staged, params), failed=dict(failed)))
    if decision:
        raise AirflowFailException(f"model not registered: {decision.detail} (team notified)")
    return {"reason": notification.reason, "sent": sent}
