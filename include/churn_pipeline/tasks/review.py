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

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churn_pipeline.domain.asset_names import CHAMPION_APPROVALS_ALIAS, CHAMPION_ASSET, MODEL_VERSION_ASSET
from churn_pipeline.domain.layout import RunLayout, review_claim_uri
from churn_pipeline.domain.review import APPROVE, REJECT
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.tasks._run import log

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import GateDecision, RegisteredVersion
    from churn_pipeline.services.objectstore import ObjectStore

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
    """One question (subject and Markdown body) per version to review in this run; the team is told
    where each one is answered. The versions: those whose registration events started the run, and
    any other version still pending that no review has asked about (below)."""
    from churn_pipeline.domain.review import EvidenceError, checked_evidence, review_body, review_link, review_subject
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    settings = load_settings()
    store = backend.object_store(settings)
    events = [event for asset, found in triggering_asset_events.items() if getattr(asset, "name", None)
              == MODEL_VERSION_ASSET for event in found]
    try:
        announced = [checked_evidence(event.extra) for event in events]
    except EvidenceError as error:
        raise AirflowFailException(str(error)) from None
    asked = [item for item in announced + unasked_versions(settings, store, announced, dag_run.run_id)
             if claimed(store, review_claim_uri(settings.base_uri, item["group"], item["version"]), dag_run.run_id)]
    if not asked:
        raise AirflowSkipException("every version to review here is asked in another run of this DAG")
    questions = []
    for index, item in enumerate(asked):
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
            run_id=dag_run.run_id, run_key=str(item["run_key"]), accuracy=decision.get("accuracy"),
            threshold=decision.get("threshold"), report_uri=decision.get("report_uri"), review_url=link)
        notify_once(notification, backend.notification_channel(settings), store,
                    RunLayout(settings.base_uri, str(item["run_key"])).notification_marker_uri(REASON_REVIEW_REQUESTED),
                    log.info)
    ti.xcom_push(key=EVIDENCE_KEY, value=asked)
    return questions


def unasked_versions(settings: Settings, store: ObjectStore, announced: list[dict[str, Any]],
                     run_id: str) -> list[dict[str, Any]]:
    """Pending versions no other review run has asked about, with the evidence their runs kept (``decision.json``).
    Airflow's asset queue can drop a registration event that arrives while the run of an earlier one is
    being created (two versions registered within one scheduler loop): that version is registered by
    the time this run starts, and is asked here instead of never."""
    from churn_pipeline.services import backend
    from churn_pipeline.services.objectstore import ObjectStoreError

    known = {item["version"] for item in announced}
    found = []
    for ref in backend.model_registry(settings).pending(settings.model_package_group):
        if ref.version in known or not ref.run_key or \
                claim_of(store, review_claim_uri(settings.base_uri, settings.model_package_group, ref.version)) \
                not in (None, run_id):
            continue
        try:
            decision = json.loads(store.read_bytes(RunLayout(settings.base_uri, ref.run_key).decision_file_uri))
        except (ObjectStoreError, ValueError) as error:
            log.warning("version %s awaits a review but its gate decision is unreadable (%s): not asked here",
                        ref.version, error)
            continue
        log.info("version %s awaits a review that no run asked (its registration event was not delivered): "
                 "asked here", ref.version)
        found.append({"group": settings.model_package_group, "version": ref.version, "identifier": ref.identifier,
                      "run_id": f"of {ref.run_key}", "run_key": ref.run_key, "decision": decision})
    return found


def claim_of(store: ObjectStore, uri: str) -> str | None:
    """The run that asks about the version, None when none does yet."""
    from churn_pipeline.services.objectstore import ObjectStoreError

    try:
        return str(json.loads(store.read_bytes(uri)).get("run_id"))
    except ObjectStoreError:
        return None


def claimed(store: ObjectStore, uri: str, run_id: str) -> bool:
    """Whether this run asks about the version: it claims the version when no run did, and keeps its
    claim on a retry. (Two runs claiming at the same instant both ask; the later answer stands.)"""
    owner = claim_of(store, uri)
    if owner is None:
        store.write_bytes(uri, json.dumps({"run_id": run_id}).encode())
        return True
    return owner == run_id


def record_review_answers(*, evidence: Any, answers: Any, params: dict[str, Any] | None = None, outlet_events: Any,
                   dag_run: Any, **_: Any) -> list[dict[str, Any]]:
    """Record each question's answer (``answers``: the HITL results, in the questions' order); one
    champion event when any was approved. An answer that timed out (no one responded) is a rejection
    that says so."""
    from churn_pipeline.services.registry import APPROVED, REJECTED

    settings = load_settings()
    # by index, not by iterating: Airflow's lazy sequence of mapped results logs an error at its end
    evidence, answered = list(evidence or []), (len(answers) if answers is not None else 0)
    if answered != len(evidence):
        raise AirflowFailException(f"{len(evidence)} question(s) but {answered} answer(s): a review_version task "
                                   "did not finish; clear it to ask again")
    decisions = []
    for index, item in enumerate(evidence):
        answer = answers[index]
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
