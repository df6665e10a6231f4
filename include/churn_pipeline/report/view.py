"""The report's content as plain, typed values: what each section says, with no HTML in it.

``page_view`` reads a run's ``ReportInputs`` (every part of which may be missing or malformed) and
decides everything a reader is told: the verdict and its reasons, which numbers go in which cell,
which rows are highlighted, what is missing. The template only lays these values out, and escapes
every one of them; the plots are drawn apart (``plots.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from churn_pipeline.domain.contract import PSI_DRIFT_FROM, PSI_WATCH_FROM
from churn_pipeline.domain.engine import described_record
from churn_pipeline.report.artefacts import Link, QualityRow, links_view, quality_view
from churn_pipeline.report.inputs import ReportInputs
from churn_pipeline.report.values import count, fixed, mapping, number, objects, share, signed

# The pipeline's metrics in reading order; names the evaluation adds later follow, sorted.
METRIC_LABELS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1_score": "F1 score",
                 "roc_auc": "ROC AUC", "lift_at_10": "top-decile lift",
                 "expected_profit": "campaign profit (own threshold)"}
# SageMaker's model-quality block (binary_classification_metrics) spells two of them differently.
QUALITY_BLOCK_NAMES = {"f1_score": "f1", "roc_auc": "auc"}
REASON_HEADLINES = {
    "model_rejected": "accuracy below the threshold",
    "evaluation_invalid": "the evaluation is unusable",
    "not_better_than_champion": "not better than the champion",
    "data_drift": "the data drifted",
}
DRIFT_LEVELS = ("drift", "watch", "ok")  # most severe first: the drift table's order
HIGHLIGHTED_LEVELS = ("drift", "watch")
# The population stability index bounds of those levels, as the drift check assigns them; stated to readers.


@dataclass(frozen=True)
class Header:
    dag_id: str
    run_key: str
    run_id: str
    backend: str
    passed: bool
    verdict: str
    reasons: tuple[str, ...]  # the decision's sentences; empty when it gives none
    rules: str
    drift_attention: str  # "" when no feature drifted or is to watch
    notes: tuple[str, ...]  # the input files that could not be read
    cost: str  # what the run's jobs cost, in one sentence; "" when the decision does not say
    engine: str = ""  # which engine ran the jobs and why; "" when the run recorded none


@dataclass(frozen=True)
class MetricRow:
    label: str
    gate: bool  # the metric the champion comparison is judged on
    value: str
    deviation: str | None  # "± 0.0081" where the evaluation bootstrapped one
    baseline: str
    champion: str | None  # None: no comparable champion, no column
    change: str | None
    change_class: Literal["", "better", "worse"]


@dataclass(frozen=True)
class Champion:
    state: Literal["unknown", "absent", "comparable", "not_comparable"]
    identifier: str
    reason: str


@dataclass(frozen=True)
class Metrics:
    rows: tuple[MetricRow, ...]  # empty: no metric could be read
    champion_column: str | None
    note: str
    champion: Champion


@dataclass(frozen=True)
class DriftRow:
    name: str
    type: str
    psi: str
    level: str
    completeness: str
    change: str
    unseen: str
    highlight: str  # the level, where the row is highlighted; else ""


@dataclass(frozen=True)
class Violation:
    feature: str
    check: str
    description: str


@dataclass(frozen=True)
class Drift:
    state: Literal["off", "absent", "no_baseline", "unknown", "compared"]
    status: str  # the status as found, for an unknown one
    against: str  # the baseline profile's identifier, or ""
    rows: str  # "" when the drift report does not say
    source: str
    counts: str
    levels: str
    features: tuple[DriftRow, ...]
    column_changes: tuple[tuple[str, tuple[str, ...]], ...]  # (what changed, the columns)
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class RankingRow:
    share: str  # "10 %"
    customers: str
    gain: str
    lift: str
    precision: str
    champion_gain: str | None  # None: no comparable champion, no column
    champion_lift: str | None


@dataclass(frozen=True)
class CampaignRow:
    label: str
    threshold: str
    contacted: str
    profit: str
    cost: str
    chosen: bool  # the row of the threshold scoring applies


@dataclass(frozen=True)
class Business:
    state: Literal["absent", "present"]
    ranking: tuple[RankingRow, ...]
    campaign: tuple[CampaignRow, ...]
    figures: str  # the campaign's figures, in one sentence
    calibration: str  # Brier, ECE, and whether a calibrator is applied and why


@dataclass(frozen=True)
class PageView:
    title: str
    header: Header
    metrics: Metrics
    business: Business
    drift: Drift
    quality: tuple[QualityRow, ...] | None  # None: no data-quality summary
    links: tuple[Link, ...]


def page_view(inputs: ReportInputs) -> PageView:
    decision = mapping(inputs.decision)
    verdict = _verdict(decision)
    return PageView(title=f"Run {inputs.run_key}: {verdict}", header=_header(inputs, decision, verdict),
                    metrics=_metrics(mapping(inputs.evaluation), decision),
                    business=_business(mapping(inputs.evaluation)), drift=_drift(inputs.drift, decision),
                    quality=quality_view(inputs.quality), links=links_view(inputs.links))


# --- header and decision ----------------------------------------------------------------------------

def _reasons(decision: Mapping[str, Any]) -> list[str]:
    reasons = decision.get("reasons")
    if isinstance(reasons, (list, tuple)) and reasons:
        return [str(reason) for reason in reasons]
    reason = decision.get("reason")
    return [str(reason)] if reason and reason != "passed" else []


def _verdict(decision: Mapping[str, Any]) -> str:
    if decision.get("passed") is True:
        return "passed, registered for approval"
    reasons = _reasons(decision)
    if not reasons:
        return "not registered"
    return "not registered: " + "; ".join(REASON_HEADLINES.get(reason, reason) for reason in reasons)


def _header(inputs: ReportInputs, decision: Mapping[str, Any], verdict: str) -> Header:
    sentences = decision.get("details")
    if not isinstance(sentences, (list, tuple)) or not sentences:
        sentences = [decision["detail"]] if decision.get("detail") else []
    return Header(dag_id=inputs.dag_id, run_key=inputs.run_key, run_id=inputs.run_id, backend=inputs.backend,
                  passed=decision.get("passed") is True, verdict=verdict[:1].upper() + verdict[1:],
                  reasons=tuple(str(sentence) for sentence in sentences), rules=_rules(decision),
                  drift_attention=_drift_attention(inputs.drift, decision), notes=tuple(inputs.notes),
                  cost=_cost(decision), engine=described_record(inputs.engine))


def _cost(decision: Mapping[str, Any]) -> str:
    """What the run's jobs cost (each job's billable time x instances x the setting's price per hour)."""
    found = mapping(decision.get("run_cost"))
    jobs = {name: mapping(item) for name, item in mapping(found.get("jobs")).items()}
    if not jobs:
        return ""
    parts = [f"{name} {fixed(item.get('cost'), 4)} ({fixed(item.get('billable_seconds'), 0)} s on "
             f"{item.get('instance_count', 1)} x {item.get('instance_type') or '?'})" for name, item in jobs.items()]
    total = number(found.get("total"))
    head = f"This run's jobs cost {total:.4f}" if total is not None else "This run's jobs cost an unknown amount"
    return f"{head}: {', '.join(parts)}, at CHURN_INSTANCE_PRICES."


def _rules(decision: Mapping[str, Any]) -> str:
    """The rules this decision applied, in one line: what a reader needs to weigh the reasons."""
    rules = [f"accuracy threshold {fixed(decision.get('threshold'))}"]
    comparison = decision.get("compare_with_champion")
    if comparison == "off":
        rules.append("champion comparison off")
    elif comparison:
        rules.append(f"champion comparison {comparison}: {decision.get('champion_metric', '?')} at least the "
                     f"champion's + {fixed(decision.get('min_improvement'))}")
    if decision.get("drift_mode"):
        rules.append(f"drift mode {decision['drift_mode']}")
    return "Rules: " + "; ".join(rules) + "."


def _drift_attention(drift: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> str:
    """A line under the decision when features drifted, so a passed run's drift is not missed."""
    if drift is None or drift.get("status") != "compared":
        return ""
    drifted, watched = (_level_count(drift, level) for level in ("drift", "watch"))
    if not drifted and not watched:
        return ""
    counts = f"{drifted:.0f} feature(s) drifted, {watched:.0f} to watch"
    if decision.get("drift_mode") == "warn":
        return f"Data drift: {counts} (drift mode warn: reported, not blocking)."
    return f"Data drift: {counts}."


def _level_count(drift: Mapping[str, Any], level: str) -> float:
    """How many features are at ``level``: the summary's count, else counted from the features."""
    counted = number(mapping(drift.get("summary")).get(level))
    if counted is not None:
        return counted
    return float(sum(1 for item in objects(drift.get("features")) if item.get("level") == level))


# --- metrics ----------------------------------------------------------------------------------------

def _metrics(evaluation: Mapping[str, Any], decision: Mapping[str, Any]) -> Metrics:
    metrics = mapping(evaluation.get("metrics")) or mapping(decision.get("metrics"))
    known = [name for name in METRIC_LABELS if number(metrics.get(name)) is not None]
    names = known + sorted(name for name, value in metrics.items()
                           if name not in METRIC_LABELS and number(value) is not None)
    found = evaluation.get("champion")
    champion = found if isinstance(found, Mapping) else None
    comparable = champion if champion is not None and champion.get("comparable") is True else None
    column = None
    if comparable is not None:
        version = comparable.get("version")
        column = f"champion (version {version})" if version is not None else "champion"
    rows = _metric_rows(names, metrics, evaluation, decision, comparable)
    sentences = []
    test, positive = mapping(evaluation.get("rows")).get("test"), mapping(evaluation.get("rows")).get("positive")
    if number(test) is not None:
        sentences.append(f"On {count(test)} test customers, {count(positive)} of whom churned{share(positive, test)}.")
    if evaluation.get("binary_classification_metrics"):
        sentences.append("± is the bootstrap standard deviation.")
    return Metrics(rows=rows, champion_column=column, note=" ".join(sentences),
                   champion=_champion(champion, evaluation))


def _metric_rows(names: Sequence[str], metrics: Mapping[str, Any], evaluation: Mapping[str, Any],
                 decision: Mapping[str, Any], champion: Mapping[str, Any] | None) -> tuple[MetricRow, ...]:
    quality = mapping(evaluation.get("binary_classification_metrics"))
    baseline = mapping(evaluation.get("baseline")).get("majority_class_accuracy")
    champion_metrics = mapping(champion.get("metrics")) if champion is not None else {}
    deltas = mapping(champion.get("delta")) if champion is not None else {}
    rows = []
    for name in names:
        deviation = number(mapping(quality.get(QUALITY_BLOCK_NAMES.get(name, name))).get("standard_deviation"))
        shown_champion = change = None
        change_class: Literal["", "better", "worse"] = ""
        if champion is not None:
            delta = number(deltas.get(name))
            if delta is None and number(champion_metrics.get(name)) is not None:
                delta = float(metrics[name]) - float(champion_metrics[name])
            change_class = "" if not delta else "better" if delta > 0 else "worse"
            shown_champion, change = fixed(champion_metrics.get(name)), signed(delta)
        rows.append(MetricRow(
            label=METRIC_LABELS.get(name, name), gate=name == decision.get("champion_metric"),
            value=fixed(metrics[name]), deviation=f"± {deviation:.4f}" if deviation is not None else None,
            baseline=fixed(baseline) if name == "accuracy" else fixed(None), champion=shown_champion, change=change,
            change_class=change_class))
    return tuple(rows)


def _champion(champion: Mapping[str, Any] | None, evaluation: Mapping[str, Any]) -> Champion:
    if champion is None:
        return Champion(state="absent" if evaluation else "unknown", identifier="", reason="")
    identifier = str(champion.get("identifier") or "")
    if champion.get("comparable") is True:
        return Champion(state="comparable", identifier=identifier, reason="")
    return Champion(state="not_comparable", identifier=identifier,
                    reason=str(champion.get("reason") or "no reason given"))


# --- in the business's terms ---------------------------------------------------------------------------

def _money(value: Any) -> str:
    found = number(value)
    return fixed(None) if found is None else f"{found:,.0f}"


def _business(evaluation: Mapping[str, Any]) -> Business:
    ranking, economics = mapping(evaluation.get("ranking")), mapping(evaluation.get("economics"))
    if not ranking and not economics:
        return Business(state="absent", ranking=(), campaign=(), figures="", calibration="")
    found = evaluation.get("champion")
    champion = found if isinstance(found, Mapping) and found.get("comparable") is True else None
    theirs = {number(row.get("share")): row for row in objects(mapping(champion.get("ranking")).get("table"))} \
        if champion is not None else {}
    rows = []
    for row in objects(ranking.get("table")):
        other = theirs.get(number(row.get("share"))) if champion is not None else None
        rows.append(RankingRow(
            share=f"{100 * (number(row.get('share')) or 0):.0f} %", customers=count(row.get("customers")),
            gain=f"{100 * (number(row.get('gain')) or 0):.1f} %", lift=fixed(row.get("lift"), 2),
            precision=fixed(row.get("precision"), 3),
            champion_gain=None if champion is None else (
                f"{100 * (number(mapping(other).get('gain')) or 0):.1f} %" if other else fixed(None)),
            champion_lift=None if champion is None else fixed(mapping(other).get("lift"), 2)))
    campaign = []

    def campaign_row(label: str, block: Any, chosen: bool = False) -> None:
        block = mapping(block)
        if block:
            campaign.append(CampaignRow(label=label, threshold=fixed(block.get("threshold"), 2),
                                        contacted=count(block.get("contacted")), profit=_money(block.get("profit")),
                                        cost=_money(block.get("cost")), chosen=chosen))

    chosen_on = economics.get("chosen_on") or "not recorded (a model older than this choice)"
    campaign_row(f"this run, at its threshold (chosen on {chosen_on})", economics.get("at_threshold"), chosen=True)
    campaign_row("this run, at 0.5", economics.get("at_default"))
    if champion is not None:
        campaign_row(f"champion (version {champion.get('version')}), at its own threshold",
                     mapping(champion.get("economics")).get("at_threshold"))
    figures = mapping(economics.get("figures"))
    figures_sentence = ""
    if figures:
        figures_sentence = (f"Keeping a churner is worth {_money(figures.get('value_retained'))}, an offer costs "
                            f"{_money(figures.get('offer_cost'))} and keeps "
                            f"{100 * (number(figures.get('offer_acceptance')) or 0):.0f} % of the churners it reaches;"
                            " profit is against contacting nobody, cost is what the churners lost and the offers"
                            " cost.")
    calibration = mapping(evaluation.get("calibration"))
    calibration_sentence = ""
    if calibration:
        applied = ("an isotonic calibrator is applied" if calibration.get("applied") is True
                   else "no calibrator is applied")
        reason = f" ({calibration['reason']})" if calibration.get("reason") else ""
        calibration_sentence = (f"Brier score {fixed(calibration.get('brier'))}, expected calibration error "
                                f"{fixed(calibration.get('ece'))}; {applied}{reason}.")
    return Business(state="present", ranking=tuple(rows), campaign=tuple(campaign), figures=figures_sentence,
                    calibration=calibration_sentence)


# --- drift ------------------------------------------------------------------------------------------

def _drift(drift: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> Drift:
    empty = Drift(state="absent", status="", against="", rows="", source="", counts="", levels="", features=(),
                  column_changes=(), violations=())
    if drift is None:
        return replace(empty, state="off" if decision.get("drift_mode") == "off" else "absent")
    status = drift.get("status")
    if status == "no_baseline":
        return replace(empty, state="no_baseline")
    if status != "compared":
        return replace(empty, state="unknown", status=repr(status))
    baseline, current = mapping(drift.get("baseline")), mapping(drift.get("current"))
    changes = []
    for key, text in (("missing_columns", "In the baseline, absent now"),
                      ("extra_columns", "New, not in the baseline")):
        columns = drift.get(key)
        if isinstance(columns, list) and columns:
            changes.append((text, tuple(str(column) for column in columns)))
    return Drift(
        state="compared", status=str(status), against=str(baseline.get("identifier") or ""),
        rows=count(current["rows"]) if number(current.get("rows")) else "",
        source=str(current.get("source") or ""),
        counts=", ".join(f"{count(_level_count(drift, level))} {level}" for level in DRIFT_LEVELS),
        levels=f"ok below {PSI_WATCH_FROM}, watch from {PSI_WATCH_FROM}, drift from {PSI_DRIFT_FROM}",
        features=_drift_rows(objects(drift.get("features"))), column_changes=tuple(changes),
        violations=tuple(Violation(feature=str(item.get("feature_name", "?")),
                                   check=str(item.get("constraint_check_type", "?")),
                                   description=str(item.get("description", "")))
                         for item in objects(drift.get("violations"))))


def _drift_rows(features: Sequence[Mapping[str, Any]]) -> tuple[DriftRow, ...]:
    def severity(item: Mapping[str, Any]) -> tuple[int, float, str]:
        level = item.get("level")
        rank = DRIFT_LEVELS.index(level) if level in DRIFT_LEVELS else len(DRIFT_LEVELS)
        return rank, -(number(item.get("psi")) or 0.0), str(item.get("name"))

    rows = []
    for item in sorted(features, key=severity):
        level = str(item.get("level", "?"))
        completeness = mapping(item.get("completeness"))
        unseen = number(item.get("unseen_share"))
        rows.append(DriftRow(
            name=str(item.get("name", "?")), type=str(item.get("type", "?")), psi=fixed(item.get("psi")), level=level,
            completeness=f"{fixed(completeness.get('baseline'), 3)} → {fixed(completeness.get('current'), 3)}",
            change=signed(completeness.get("change"), 3),
            unseen=f"{100 * unseen:.1f} %" if unseen is not None else fixed(None),
            highlight=level if level in HIGHLIGHTED_LEVELS else ""))
    return tuple(rows)
