"""What a run did, in the dozen lines a person reads at the end of it.

The run's last task writes the outcome (``runs/<run key>/outcome.json``: registered, not registered
or failed, the version or the failed tasks with their reasons, where the customers came from) and
logs these lines: ``register_model`` when the gate passed, ``notify_failure`` otherwise. So a run
started from the UI or with ``airflow dags test ... --conf`` ends with the same lines as ``make
demo``, and ``cli summary --run-key K`` prints them again later from the same files. Everything is
read through the object store, so the lines are the same on both backends; a part that is missing
(the run stopped before it) is said, never guessed. Every value that came from data or params
(``input_uri``, column names in a reason, a subject) is shown neutralised
(``churn_pipeline.domain.text``), and each further line of a reason is indented under its label, so
no value can add a line that poses as one of the summary's own. The engine gets a line when the run
is on Spark or asked for its engine; scikit-learn chosen by ``auto`` is every small run's, and the
report says it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from churn_pipeline.domain.contract import FILES
from churn_pipeline.domain.engine import described_record, is_everyday
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.text import shown as neutral
from churn_pipeline.domain.text import shown_lines
from churn_pipeline.services.objectstore import ObjectStore, ObjectStoreError

REGISTERED = "registered"
NOT_REGISTERED = "not_registered"  # the gate decided against the model
FAILED = "failed"  # a task failed before the run could decide
JOB_COUNTS = {3: "three", 4: "four"}  # the three jobs, and score_champion where a champion of the other engine ran


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as its last task saw it."""

    status: str
    data_source: str | None = None
    group: str | None = None
    version: int | None = None
    identifier: str | None = None
    approval_status: str | None = None
    failed: Mapping[str, str] = field(default_factory=dict)  # task id -> reason, when it failed

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "failed": dict(self.failed)}, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RunOutcome:
        raw = json.loads(data)
        return cls(**{name: raw.get(name) for name in cls.__dataclass_fields__ if name in raw})


def write_outcome(store: ObjectStore, layout: RunLayout, outcome: RunOutcome) -> None:
    store.write_bytes(layout.outcome_file_uri, outcome.to_json())


def _read_json(store: ObjectStore, uri: str) -> Any:
    try:
        return json.loads(store.read_bytes(uri))
    except (ObjectStoreError, ValueError):
        return None


def _read_outcome(store: ObjectStore, layout: RunLayout) -> RunOutcome | None:
    try:
        return RunOutcome.from_json(store.read_bytes(layout.outcome_file_uri))
    except (ObjectStoreError, ValueError, TypeError):
        return None


def _notifications(store: ObjectStore, layout: RunLayout) -> list[dict[str, Any]]:
    """The messages this run sent (one marker per reason, written by ``notify_once``)."""
    try:
        uris = store.list_uris(layout.notifications_uri)
    except ObjectStoreError:
        return []
    found = [_read_json(store, uri) for uri in sorted(uris) if uri.endswith(".json")]
    return [item for item in found if isinstance(item, dict)]


def _metrics(values: Mapping[str, float]) -> str:
    return "  ".join(f"{neutral(name)} {value:.4f}" for name, value in values.items())


def summary_lines(store: ObjectStore, layout: RunLayout, shown: Callable[[str], str] = str,
                  outcome: RunOutcome | None = None) -> list[str]:
    """The run's summary. ``shown`` turns a URI into what a person opens (a local path, an S3 URI);
    ``outcome`` is the last task's own (else read from the run's prefix)."""
    outcome = outcome or _read_outcome(store, layout)
    lines = [f"run {layout.key}", f"  artefacts     {shown(layout.run_uri)}"]
    if outcome and outcome.data_source:
        lines.append(f"  data source   {neutral(outcome.data_source)}")
    record = _read_json(store, layout.engine_file_uri)
    if not is_everyday(record) and described_record(record):  # Spark, or an engine the run asked for
        lines.append(f"  engine        {neutral(described_record(record))}")
    if outcome and outcome.group:  # the model package group: where its versions and champion are
        lines.append(f"  group         {neutral(outcome.group)}")
    quality = _read_json(store, f"{layout.preprocessing_uri('quality')}/{FILES['data_quality']}")
    if quality:
        lines.append(f"  customers     {quality['rows_read']} rows read, {quality['rows_used']} used")
    evaluation = _read_json(store, layout.evaluation_file_uri)
    if evaluation:
        lines.append(f"  test metrics  {_metrics(evaluation['metrics'])}")
        lines.append(f"  baseline      majority-class accuracy {evaluation['baseline']['majority_class_accuracy']:.4f}")
        champion = evaluation.get("champion")
        if champion and champion.get("comparable"):
            lines.append(f"  champion      version {champion['version']}: {_metrics(champion['metrics'])}")
        elif champion:
            lines.append(f"  champion      version {champion['version']}, not comparable: "
                         f"{neutral(champion['reason'])}")
        else:
            lines.append("  champion      none approved yet")
        economics = evaluation.get("economics")
        if economics:
            chosen, default = economics["at_threshold"], economics["at_default"]
            lines.append(f"  campaign      contact above {chosen['threshold']:.2f} "
                         f"(chosen on {economics.get('chosen_on')}): cost {chosen['cost']:,.0f} on the test split "
                         f"against {default['cost']:,.0f} at 0.5 "
                         f"(profit {chosen['profit']:,.0f} against {default['profit']:,.0f})")
            lines.append(f"  ranking       top-decile lift {evaluation['ranking']['top_decile_lift']:.2f}, "
                         f"calibrated: {'yes' if evaluation.get('calibration', {}).get('applied') else 'no'}")
    decision = _read_json(store, layout.decision_file_uri)
    cost = (decision or {}).get("run_cost") or {}
    if cost.get("total") is not None:
        jobs = len(cost.get("jobs") or {}) or 3
        lines.append(f"  cost          {cost['total']:.4f} for the {JOB_COUNTS.get(jobs, jobs)} jobs (at "
                     "CHURN_INSTANCE_PRICES)")
    if decision:
        verdict = "passed" if decision["passed"] else f"not passed ({', '.join(decision['reasons'])})"
        lines.append(f"  gate          {neutral(verdict)}")
        lines += [f"                - {neutral(sentence)}" for sentence in decision["details"]]
    if outcome and outcome.status == REGISTERED:
        lines.append(f"  registered    {outcome.group} version {outcome.version} ({outcome.approval_status}): "
                     f"{outcome.identifier}")
    for task, reason in (outcome.failed.items() if outcome else ()):
        lines.append(f"  failed at     {neutral(task)}: " + shown_lines(reason).replace("\n", "\n" + " " * 16))
    for item in _notifications(store, layout):
        lines.append(f"  notified      {neutral(item.get('reason'))}: {neutral(item.get('subject'))}")
    if outcome is None:
        lines.append("  outcome       none recorded: the run is still going, or its last task has not run "
                     "(see the run's task logs)")
    if store.exists(layout.report_file_uri):
        lines.append(f"  report        {shown(layout.report_file_uri)}")
    return lines



def shown_by(store: ObjectStore) -> Callable[[str], str]:
    """How a URI of ``store`` is shown to a person: the file's path for the local store, else the URI."""
    path_for = getattr(store, "path_for", None)
    return (lambda uri: str(path_for(uri))) if path_for else str


def scoring_lines(summary: Mapping[str, Any], shown: Callable[[str], str] = str) -> list[str]:
    """A scoring run's ``summary.json`` as a person reads it: how many per band, who is most at risk."""
    model = summary["model"]
    lines = [f"scoring run {summary['run_key']}: {summary['customers']} customers scored with version "
             f"{model['version']} ({model['identifier']})",
             "  per band      " + ", ".join(f"{band} {count}" for band, count in summary["per_band"].items())]
    if summary.get("dropped_duplicates"):
        lines.append(f"  duplicates    {summary['dropped_duplicates']} repeated customers scored once")
    campaign = summary.get("campaign")
    if campaign:
        lines.append(f"  campaign      contact {campaign['contact']}: "
                     f"expected profit {campaign['expected_profit']:,.2f}"
                     + (f", value at risk {campaign['value_at_risk']:,.2f}" if campaign.get("value_at_risk") else ""))
    holdout = summary.get("holdout")
    if holdout:
        lines.append(f"  holdout       {holdout['customers']} customers not to contact ({holdout['share']:.0%} "
                     "share, CHURN_HOLDOUT_SHARE): what outcomes are measured on unbiased")
    lines.append(f"  most at risk  (the top {len(summary['top'])})")
    lines += [f"    {rank:>2}. {item['id']}  {item['churn_probability']:.4f}  {item['risk_band']}"
              for rank, item in enumerate(summary["top"], start=1)]
    cost = (summary.get("cost") or {}).get("cost")
    if cost is not None:
        lines.append(f"  cost          {cost:.4f} (the transform job, at CHURN_INSTANCE_PRICES)")
    lines.append(f"  scores        {shown(summary['scores_uri'])}")
    return lines
