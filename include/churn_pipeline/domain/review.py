"""What a person reviewing a registered version reads, and what the registry keeps of the answer.

``review_body``: the question's Markdown in Airflow's Required Actions: the gate's decision and every
rule's sentence, the metrics beside the champion's, drift, the business figures and the report.
``decision_description``: who decided, when, how and why, as SageMaker's ``ApprovalDescription``
(at most 1,024 characters) and the MLflow tag keep it. ``review_link``: the review's page in the UI.
Pure: no Airflow, no registry; the words from data (feature names, comments) are escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

APPROVE, REJECT = "Approve", "Reject"
MAX_DESCRIPTION = 1024  # SageMaker's ApprovalDescription limit
# the metrics shown beside the champion's, in this order; the business figures follow them
REVIEW_METRICS = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "lift_at_10", "expected_profit")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


class EvidenceError(ValueError):
    """The registration event does not carry what a review needs."""


def escaped(text: object) -> str:
    """Text from data or a person, shown as itself in Markdown (no links, tables or HTML)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4f}"


def review_subject(group: str, version: int) -> str:
    return f"Approve {group} version {version}?"


def checked_evidence(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The registration event's extra, checked: one line naming what is missing."""
    extra = dict(extra or {})
    missing = [name for name in ("group", "version", "identifier", "decision") if name not in extra]
    if missing:
        raise EvidenceError(f"the churn_model_version event carries no {', '.join(missing)}; was it emitted by "
                            "register_model? (its extra has: " + (", ".join(sorted(extra)) or "nothing") + ")")
    if not isinstance(extra["version"], int) or isinstance(extra["version"], bool):
        raise EvidenceError(f"the churn_model_version event's version must be a number, got {extra['version']!r}")
    return extra


def review_body(evidence: Mapping[str, Any], report_link: str | None) -> str:
    """The Markdown a reviewer reads: decision, metrics against the champion, drift, business, report."""
    decision = evidence["decision"]
    metrics = decision.get("metrics") or {}
    champion = decision.get("champion") or {}
    champion_metrics = champion.get("metrics") or {}
    lines = [f"**{escaped(evidence['group'])} version {evidence['version']}** ({escaped(evidence['identifier'])}), "
             f"registered by run {escaped(evidence.get('run_id', 'unknown'))}.", "",
             f"**Gate: {'passed' if decision.get('passed') else 'not passed'}**: {escaped(decision.get('detail', ''))}"]
    lines += [f"- {escaped(sentence)}" for sentence in decision.get("details", ())]
    heading = (f"champion (version {champion.get('version')})" if champion else "champion (none approved)")
    lines += ["", f"| metric | this version | {heading} |", "| --- | ---: | ---: |"]
    for name in REVIEW_METRICS:
        if name in metrics or name in champion_metrics:
            lines.append(f"| {name} | {_number(metrics.get(name))} | {_number(champion_metrics.get(name))} |")
    drifted = decision.get("drifted_features") or ()
    lines += ["", "**Drift**: " + (f"drifted from the baseline in {escaped(', '.join(drifted))}" if drifted
                                    else "no feature at level drift")]
    campaign = decision.get("campaign") or {}
    business = []
    if isinstance(metrics.get("expected_profit"), int | float):
        business.append(f"expected campaign profit {metrics['expected_profit']:,.2f} on the test split")
    if isinstance(metrics.get("lift_at_10"), int | float):
        business.append(f"top-decile lift {metrics['lift_at_10']:.2f}")
    economics = campaign.get("economics") if isinstance(campaign, Mapping) else None
    threshold = economics.get("threshold") if isinstance(economics, Mapping) else None
    if isinstance(threshold, int | float):
        business.append(f"contact above {threshold:.2f}")
    # a blank line before each: Markdown would run consecutive lines into one paragraph
    lines += ["", "**Business**: " + ("; ".join(business) if business else "no figures for this version")]
    # an autolink: a path's underscores stay underscores, and the reviewer can click it
    lines += ["", f"**Report**: <{report_link}>" if report_link else "**Report**: none was written"]
    return "\n".join(lines)


def decision_description(status: str, decided_by: str, decided_at: str, via: str, reason: str) -> str:
    """SageMaker's ``ApprovalDescription`` (and the MLflow tag): who, when, how, why; within its limit."""
    said = " ".join(reason.split()) or "no comment"
    return f"{status} by {decided_by} at {decided_at} via {via}: {said}"[:MAX_DESCRIPTION]


def review_link(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The Required Actions page of one question, as Airflow's UI routes it: a mapped task's question
    lives under ``/mapped/<index>`` (the provider's ``generate_link_to_ui`` puts the index in the query,
    which the UI ignores, and so shows every question of the task instead)."""
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    return (f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/"
            f"{quote(task_id, safe='')}{mapped}/required_actions")
