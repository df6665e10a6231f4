"""Deciding on a registered version: one path for every way of approving.

``record_decision`` is where every decision ends, whoever made it and however: the review in Airflow
(``customer_churn_review``), the local approval DAG and ``churn approve`` / ``reject``. It writes the
decision where the registry keeps it (SageMaker: the package's ``ModelApprovalStatus`` and
``ApprovalDescription``; locally: the MLflow tags and the ``champion`` alias) and says who, when,
how and why. ``emit_champion`` adds the one ``churn_champion`` event, for an approval only.

The review DAG's tasks: ``prepare_review`` (``questions_for_review``) reads the registration events
that started the run (one question per version), tells the team where to answer, and hands each
question to the ``review_version`` HITL task; ``record_reviews`` (``record_review_answers``) records
every answer (an unanswered question's default after ``CHURN_REVIEW_TIMEOUT_DAYS`` is a rejection,
which it says was automatic).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.asset_names import CHAMPION_APPROVALS_ALIAS, CHAMPION_ASSET, MODEL_VERSION_ASSET
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.review import APPROVE, REJECT
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.tasks._run import log

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import GateDecision, RegisteredVersion

REVIEW_TASK = "review_version"
EVIDENCE_KEY = "evidence"
REASON_REVIEW_REQUESTED = "review_requested"
COMMENT_PARAM = "comment"
DEFAULT_UI_URL = "http://localhost:8080"  # Airflow's own default for [api] base_url


def record_decision(settings: Settings, *, version: int, status: str, decided_by: str, via: str, reason: str,
                    identifier: str | None = None) -> dict[str, Any]:
    """Write one decision on ``version`` to the registry; returns it, with the champion afterwards."""
    from churn_pipeline.domain.review import decision_description
    from churn_pipeline.services import backend

    decided_at = datetime.now(UTC).isoformat(timespec="seconds")
    description = decision_description(status, decided_by, decided_at, via, reason)
    champion = backend.model_registry(settings).set_approval(settings.model_package_group, version, status,
                                                             description, identifier)
    log.info("%s version %s is now %s (%s); the champion is %s", settings.model_package_group, version, status,
             description, f"version {champion}" if champion else "none")
    return {"version": version, "identifier": identifier, "status": status, "description": description,
            "champion": champion}


def emit_champion(outlet_events: Any, decision: dict[str, Any]) -> bool:
    """The one ``churn_champion`` event of an approval, through the deciding task's alias outlet;
    nothing for a rejection, so that only an approval schedules scoring."""
    from airflow.sdk import Asset, AssetAlias

    from churn_pipeline.services.registry import APPROVED

    if decision["status"] != APPROVED:
        return False
    outlet_events[AssetAlias(name=CHAMPION_APPROVALS_ALIAS)].add(
        Asset(name=CHAMPION_ASSET), extra={key: decision[key] for key in ("version", "identifier", "champion")})
    return True


def registration_evidence(settings: Settings, version: RegisteredVersion, decision: GateDecision, run_id: str,
                          run_key: str) -> dict[str, Any]:
    """The ``churn_model_version`` event's extra: what the version's review shows."""
    return {"group": settings.model_package_group, "version": version.version, "identifier": version.identifier,
            "run_id": run_id, "run_key": run_key, "decision": decision.to_xcom()}


def announce_registration(outlet_events: Any, evidence: dict[str, Any]) -> None:
    from airflow.sdk import Asset

    if outlet_events is not None:
        outlet_events[Asset(name=MODEL_VERSION_ASSET)].extra = evidence


def report_link(settings: Settings, report_uri: str | None) -> str | None:
    """Where a person opens the report: the file locally, the S3 console on AWS."""
    from churn_pipeline.domain.s3_uris import parse_s3_uri

    if not report_uri:
        return None
    if settings.backend == "local":
        from churn_pipeline.services.objectstore import LocalObjectStore

        return LocalObjectStore(settings.local_root).path_for(report_uri).as_uri()
    bucket, key = parse_s3_uri(report_uri)
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={settings.region}&prefix={key}"


def ui_base_url() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback=None) or DEFAULT_UI_URL


def questions_for_review(*, triggering_asset_events: Any, dag_run: Any, ti: Any, **_: Any) -> list[dict[str, str]]:
    """One question (subject and Markdown body) per version whose registration started this run; the
    team is told where each one is answered. Versions registered in the same moment share a run."""
    from churn_pipeline.domain.review import EvidenceError, checked_evidence, review_body, review_link, review_subject
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    settings = load_settings()
    events = [event for asset, found in triggering_asset_events.items() if getattr(asset, "name", None)
              == MODEL_VERSION_ASSET for event in found]
    if not events:
        raise AirflowFailException(f"this run was not started by a {MODEL_VERSION_ASSET} event: nothing to review "
                                   "(a version is reviewed when register_model registers it)")
    try:
        evidence = [checked_evidence(event.extra) for event in events]
    except EvidenceError as error:
        raise AirflowFailException(str(error)) from None
    questions = []
    for index, item in enumerate(evidence):
        link = review_link(ui_base_url(), dag_run.dag_id, dag_run.run_id, REVIEW_TASK, index)
        item["review_url"] = link
        decision = item["decision"]
        questions.append({"subject": review_subject(item["group"], item["version"]),
                          "body": review_body(item, report_link(settings, decision.get("report_uri")))})
        notification = Notification(
            reason=REASON_REVIEW_REQUESTED, subject=f"Churn model version {item['version']} awaits your review",
            message=(f"Version {item['version']} of {item['group']} ({item['identifier']}) passed the gate and "
                     f"awaits a decision: {link} (rejected by itself after {settings.review_timeout_days:g} "
                     "day(s) without an answer)."),
            run_id=dag_run.run_id, run_key=str(item.get("run_key", "")), accuracy=decision.get("accuracy"),
            threshold=decision.get("threshold"), report_uri=decision.get("report_uri"), review_url=link)
        layout = RunLayout(settings.base_uri, str(item["run_key"])) if item.get("run_key") else None
        marker = (layout.notification_marker_uri(REASON_REVIEW_REQUESTED) if layout else
                  f"{settings.base_uri}/notifications/review/{item['group']}-v{item['version']}.json")
        notify_once(notification, backend.notification_channel(settings), backend.object_store(settings), marker,
                    log.info)
    ti.xcom_push(key=EVIDENCE_KEY, value=evidence)
    return questions


def record_review_answers(*, evidence: Any, answers: Any, params: dict[str, Any] | None = None, outlet_events: Any,
                   dag_run: Any, **_: Any) -> list[dict[str, Any]]:
    """Record each question's answer (``answers``: the HITL results, in the questions' order); one
    champion event when any was approved. An answer that timed out (no one responded) is a rejection
    that says so."""
    from churn_pipeline.services.registry import APPROVED, REJECTED

    settings = load_settings()
    evidence, answers = list(evidence or []), list(answers or [])
    if len(answers) != len(evidence):
        raise AirflowFailException(f"{len(evidence)} question(s) but {len(answers)} answer(s): a review_version task "
                                   "did not finish; clear it to ask again")
    decisions = []
    for item, answer in zip(evidence, answers, strict=True):
        if not answer:
            raise AirflowFailException(f"version {item['version']}'s review has no answer; clear {REVIEW_TASK} to "
                                       "ask again")
        chosen = list(answer.get("chosen_options") or [])
        if chosen not in ([APPROVE], [REJECT]):
            raise AirflowFailException(f"version {item['version']}'s review chose {chosen}; expected one of "
                                       f"{APPROVE}, {REJECT}")
        comment = str((answer.get("params_input") or {}).get(COMMENT_PARAM) or "")
        who = answer.get("responded_by_user")
        if who:
            decided_by, reason = str(who.get("name") or who.get("id")), comment
            status = APPROVED if chosen == [APPROVE] else REJECTED
        else:  # nobody answered: the scheduler took the question's default after its response timeout
            decided_by, status = "nobody", REJECTED
            reason = f"no answer within {settings.review_timeout_days:g} day(s): rejected automatically"
        decision = record_decision(settings, version=int(item["version"]), status=status, decided_by=decided_by,
                                   via=f"Airflow review ({dag_run.dag_id} run {dag_run.run_id})", reason=reason,
                                   identifier=item.get("identifier"))
        decisions.append(decision)
    approved = [decision for decision in decisions if decision["status"] == APPROVED]
    if approved:  # one event however many were approved: scoring runs once, with the newest approved
        emit_champion(outlet_events, max(approved, key=lambda decision: decision["version"]))
    return decisions
