"""The outcome DAG's tasks: did the predictions come true?

``measure_outcomes`` finds the scoring cohorts (``scoring/<run key>/``) whose label horizon has passed
and that are not measured yet, joins each cohort's scores with the labels (the current customer table,
or the ``labels_uri`` param), and writes per cohort ``outcomes/<cohort key>/outcome.json``: label
coverage, realised accuracy, ROC AUC, top-decile lift and precision, calibration and the realised
profit at the model's stored threshold, on everyone and on the holdout, beside what the model promised
when it was registered (its evaluation on the test split). A cohort is measured once. The labels are
checked for every due cohort before anything is written: a table lacking the id or the target column
fails in one line naming it, and nothing is written.

``judge_outcomes`` reads every measured cohort, fails a cohort whose realised ROC AUC or lift fell
short of the promise by more than ``CHURN_OUTCOME_MARGIN`` (domain.outcomes), writes the outcomes page,
links it from the registry, and when 2 of the last 5 cohorts failed tells the team once (per newest
cohort). ``request_retraining`` then emits ``churn_retrain`` (which starts the training DAG) only
when that message went out now and ``CHURN_OUTCOME_RETRAIN`` is on; otherwise it is skipped, and a
skipped task emits no asset event.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churn_pipeline.domain.layout import OutcomeLayout, RunLayout, ScoringLayout
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.tasks._run import log

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.services.objectstore import ObjectStore

REASON_SUSTAINED_FAILURE = "outcomes_failed"
# Judge on the holdout (unbiased by offers) when it holds this many labelled customers of both
# classes: its top decile is then 200 customers, whose lift wobbles by about 0.1, well inside a 15 %
# margin. A smaller holdout (the sample's 500) failed a sound cohort on lift by chance alone, so
# everyone is judged instead, and the record says which.
MIN_JUDGED_HOLDOUT = 2000
CALIBRATION_BINS = 10
# SageMaker's model-quality names (evaluation.json's binary_classification_metrics) and the project's
MODEL_QUALITY_NAMES = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "f1_score",
                       "auc": "roc_auc"}


def cohort_keys(store: ObjectStore, layout: OutcomeLayout) -> list[str]:
    """Every scoring run that published scores, oldest first."""
    suffix = "/summary.json"
    prefix = layout.scoring_uri + "/"
    keys = {uri[len(prefix):-len(suffix)] for uri in store.list_uris(layout.scoring_uri)
            if uri.startswith(prefix) and uri.endswith(suffix) and "/" not in uri[len(prefix):-len(suffix)]}
    return sorted(keys)


def _labels_table(settings: Settings, store: ObjectStore, labels_uri: str,
                  scratch: Path) -> tuple[list[Path], list[str]]:
    from churn_pipeline.services.customer_lines import table_columns
    from churn_pipeline.tasks.scoring import customer_files

    files = customer_files(settings, store, labels_uri, scratch)
    return files, table_columns(files)


def _read_labels(files: list[Path], id_column: str, target: dict[str, Any]) -> dict[str, int]:
    """Each labelled customer's outcome, 1 for churn; unknown or blank targets are not labels."""
    import pandas as pd

    parts = [pd.read_parquet(path, columns=[id_column, target["column"]]).astype("string")
             if path.suffix.lower() == ".parquet" else
             pd.read_csv(path, usecols=[id_column, target["column"]], dtype=str, keep_default_na=False)
             for path in files]
    frame = pd.concat(parts, ignore_index=True)
    values = frame[target["column"]].fillna("").str.strip()
    positive, negative = str(target["positive"]).strip(), str(target["negative"]).strip()
    known = values.isin([positive, negative])
    ids = frame[id_column].fillna("").str.strip()
    return dict(zip(ids[known], (values[known] == positive).astype(int), strict=True))


def _read_scores(store: ObjectStore, cohort_key: str, base_uri: str, scratch: Path) -> Any:
    import pandas as pd

    path = scratch / f"scores-{cohort_key}.csv"
    store.fetch(ScoringLayout(base_uri, cohort_key).scores_file_uri, path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame.rename(columns={frame.columns[0]: "id"})
    frame["id"] = frame["id"].str.strip()
    frame["churn_probability"] = frame["churn_probability"].astype(float)
    frame["holdout"] = frame["holdout"] == "yes" if "holdout" in frame else False
    return frame


def _calibration_curve(labels: Any, scores: Any) -> dict[str, list[float]]:
    import numpy as np

    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    filled = counts > 0
    predicted = np.bincount(bins, weights=scores, minlength=CALIBRATION_BINS)[filled] / counts[filled]
    observed = np.bincount(bins, weights=labels, minlength=CALIBRATION_BINS)[filled] / counts[filled]
    return {"mean_predicted": [round(float(v), 6) for v in predicted],
            "fraction_positive": [round(float(v), 6) for v in observed], "count": [int(v) for v in counts[filled]]}


def realised_figures(labels: Any, scores: Any, threshold: float, economics: dict[str, float]) -> dict[str, Any]:
    """What the scores of these labelled customers were worth, on the figures the model promised."""
    import numpy as np
    from sklearn.metrics import accuracy_score, roc_auc_score

    from churn_pipeline.domain.economics import campaign_rules

    rules = campaign_rules()
    labels, scores = np.asarray(labels, dtype="int64"), np.asarray(scores, dtype="float64")
    figures: dict[str, Any] = {"customers": len(labels), "churners": int(labels.sum())}
    if len(labels) == 0:
        return figures
    both_classes = 0 < labels.sum() < len(labels)
    ranking = rules.ranking(labels, scores)
    campaign = rules.campaign(labels, scores, rules.Economics(**economics), threshold)
    figures.update({
        "accuracy": float(accuracy_score(labels, (scores > 0.5).astype("int64"))),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "lift_at_10": ranking["top_decile_lift"] if both_classes else None,
        "top_decile_precision": ranking["top_decile_precision"],
        "churn_rate": float(labels.mean()), "mean_predicted": float(scores.mean()),
        "ece": float(rules.calibration_error(labels, scores)),
        "profit_at_threshold": campaign["profit"], "contacted_at_threshold": campaign["contacted"],
        "profit_per_customer": round(campaign["profit"] / len(labels), 4),
        "lift_curve": ranking["curve"], "calibration": _calibration_curve(labels, scores)})
    return figures


def promised_figures(store: ObjectStore, settings: Settings, model: dict[str, Any]) -> dict[str, Any]:
    """What the cohort's model promised when it was registered: its metrics, and from its evaluation on
    the test split the stored threshold, the campaign's figures, the lift curve and the calibration."""
    metrics = {name: float(value) for name, value in (model.get("metrics") or {}).items()}
    evaluation = json.loads(store.read_bytes(RunLayout(settings.base_uri, model["run_key"]).evaluation_file_uri))
    economics, ranking = evaluation["economics"], evaluation["ranking"]
    rows = evaluation["rows"]["test"]
    quality = evaluation.get("binary_classification_metrics", {})
    deviations = {name: float(quality[key]["standard_deviation"]) for key, name in MODEL_QUALITY_NAMES.items()
                  if isinstance(quality.get(key), dict) and "standard_deviation" in quality[key]}
    return {**metrics, "top_decile_precision": ranking["top_decile_precision"],
            "profit_per_customer": round(float(economics["at_threshold"]["profit"]) / rows, 4),
            "ece": evaluation.get("calibration", {}).get("ece"), "threshold": float(economics["threshold"]),
            "economics": economics["figures"], "lift_curve": ranking["curve"], "test_customers": rows,
            "standard_deviations": deviations}


def _due_cohorts(store: ObjectStore, layout: OutcomeLayout, now: datetime, horizon_days: int) -> list[str]:
    from churn_pipeline.domain.outcomes import is_due

    due = []
    for key in cohort_keys(store, layout):
        if store.exists(layout.cohort_file_uri(key)):
            continue
        if not is_due(key, now, horizon_days):
            log.info("cohort %s not measured: its labels are due %d days after scoring", key, horizon_days)
            continue
        due.append(key)
    return due


def measure_due_cohorts(*, params: dict[str, Any], dag_run: Any, extracted: Any = None,
                        **context: Any) -> dict[str, Any]:
    """``extracted``: what ``extract_labels`` read from the source, if one is configured; else the
    ``labels_uri`` param is read."""
    from churn_pipeline.domain.payloads import ExtractedCustomers
    from churn_pipeline.services import backend
    from churn_pipeline.tasks._run import received_optional
    from churn_pipeline.tasks.scoring import champion_schema_at

    settings = load_settings()
    now = context.get("logical_date") or dag_run.run_after
    layout = OutcomeLayout(settings.base_uri)
    store = backend.object_store(settings)
    due = _due_cohorts(store, layout, now, settings.label_horizon_days)
    if not due:
        log.info("no scoring cohort is due for measuring")
        return {"measured": []}
    from_source = received_optional(ExtractedCustomers, extracted)
    labels_uri = from_source.input_uri if from_source else str(params.get("labels_uri") or
                                                               settings.default_input_uri).strip()
    with tempfile.TemporaryDirectory(prefix="outcomes-") as scratch_dir:
        scratch = Path(scratch_dir)
        plans = []
        for key in due:
            summary = json.loads(store.read_bytes(ScoringLayout(settings.base_uri, key).summary_file_uri))
            model = summary.get("model", {})
            if not model.get("model_uri") or not model.get("run_key"):
                log.info("cohort %s not measured: scored before scoring recorded what the model promised", key)
                continue
            plans.append((key, summary, champion_schema_at(store, model["model_uri"])))
        try:
            files, columns = _labels_table(settings, store, labels_uri, scratch / "labels")
        except (OSError, ValueError) as error:
            raise AirflowFailException(f"cannot read the labels at {labels_uri}: {error}") from None
        for key, _, schema in plans:  # every cohort checked before anything is written
            if not schema.get("id_column"):
                raise AirflowFailException(f"cohort {key} was scored by a model whose schema names no id_column: "
                                           "its scores cannot be joined with anyone's labels")
            for role, column in (("id", schema["id_column"]), ("target", schema["target"]["column"])):
                if column not in columns:
                    raise AirflowFailException(
                        f"the labels table at {labels_uri} lacks the {role} column {column!r} that cohort {key} "
                        f"needs; it has: {', '.join(columns)}")
        records = []
        labels_by_schema: dict[tuple[str, str], dict[str, int]] = {}
        for key, summary, schema in plans:
            which = (schema["id_column"], schema["target"]["column"])
            if which not in labels_by_schema:
                labels_by_schema[which] = _read_labels(files, schema["id_column"], schema["target"])
            records.append(cohort_record(store, settings, key, summary, labels_by_schema[which], scratch, labels_uri))
        unlabelled = [record["cohort"] for record in records if record["scored"] and not record["labelled"]]
        if unlabelled:  # the wrong table, most likely: a cohort measured on nobody would pass for ever
            raise AirflowFailException(f"none of the customers of cohort(s) {', '.join(unlabelled)} has a label in "
                                       f"{labels_uri} (no id in common, or no known target value)")
        measured = []
        for record in records:
            key = record["cohort"]
            store.write_bytes(layout.cohort_file_uri(key), json.dumps(record, indent=2, sort_keys=True).encode())
            log.info("cohort %s: coverage %.1f%%, realised ROC AUC %s, lift %s (promised %s, %s)", key,
                     100 * record["coverage"], record["everyone"].get("roc_auc"), record["everyone"].get("lift_at_10"),
                     record["promised"].get("roc_auc"), record["promised"].get("lift_at_10"))
            measured.append(key)
    return {"measured": measured}


def cohort_record(store: ObjectStore, settings: Settings, key: str, summary: dict[str, Any],
                  labels: dict[str, int], scratch: Path, labels_uri: str) -> dict[str, Any]:
    """One cohort's outcome: coverage, realised figures on everyone and on the holdout, the promise."""
    from churn_pipeline.domain.outcomes import failures

    scores = _read_scores(store, key, settings.base_uri, scratch)
    scores["label"] = scores["id"].map(labels)
    labelled = scores[scores["label"].notna()]
    promised = promised_figures(store, settings, summary["model"])

    def figures(rows: Any) -> dict[str, Any]:
        return realised_figures(rows["label"].astype(int).to_numpy(), rows["churn_probability"].to_numpy(),
                                promised["threshold"], promised["economics"])

    everyone, holdout = figures(labelled), figures(labelled[labelled["holdout"]])
    judged_on = ("holdout" if holdout["customers"] >= MIN_JUDGED_HOLDOUT and holdout.get("roc_auc") is not None
                 else "everyone")
    reasons = failures({"holdout": holdout, "everyone": everyone}[judged_on], promised, settings.outcome_margin)
    return {"cohort": key, "model": {name: summary["model"].get(name) for name in ("version", "identifier", "run_key")},
            "labels_uri": labels_uri, "scored": len(scores), "labelled": len(labelled),
            "coverage": round(len(labelled) / len(scores), 6) if len(scores) else 0.0,
            "horizon_days": settings.label_horizon_days, "everyone": everyone, "holdout": holdout,
            "promised": promised, "margin": settings.outcome_margin, "judged_on": judged_on,
            "failed": bool(reasons), "reasons": reasons}


def champion_at(settings: Settings) -> Any:
    from churn_pipeline.services import backend

    return backend.model_registry(settings).champion(settings.model_package_group)


def judge_the_cohorts(*, dag_run: Any, **context: Any) -> dict[str, Any]:
    from churn_pipeline.domain.outcomes import FAILURES_TO_ACT, WINDOW_COHORTS, sustained_failure
    from churn_pipeline.report.outcomes_page import render_outcomes_page
    from churn_pipeline.services import backend
    from churn_pipeline.services.notifications import Notification, notify_once

    settings = load_settings()
    layout = OutcomeLayout(settings.base_uri)
    store = backend.object_store(settings)
    records = [json.loads(store.read_bytes(layout.cohort_file_uri(key))) for key in cohort_keys(store, layout)
               if store.exists(layout.cohort_file_uri(key))]
    if not records:
        log.info("no cohort measured yet: nothing to judge")
        return {"cohorts": 0, "failed": 0, "sustained": False, "notified": False, "retrain": False}
    store.write_bytes(layout.page_uri, render_outcomes_page(records).encode())
    backend.model_registry(settings).link_outcomes(records[-1]["model"]["identifier"], layout.page_uri)
    window = records[-WINDOW_COHORTS:]
    failed = [record["cohort"] for record in window if record["failed"]]
    sustained = sustained_failure([record["failed"] for record in records])
    verdict = (f"{len(failed)} of the last {len(window)} measured cohort(s) failed"
               + (f" ({', '.join(failed)})" if failed else ""))
    log.info("verdict: %s; outcomes page %s", verdict, layout.page_uri)
    notified = False
    if sustained:
        newest = records[-1]["cohort"]
        lines = [f"{record['cohort']}: " + "; ".join(record["reasons"]) for record in window if record["failed"]]
        notification = Notification(
            reason=REASON_SUSTAINED_FAILURE,
            subject=f"Churn model's predictions are not coming true ({len(failed)} of {len(window)} cohorts)",
            message=(f"{verdict}: at least {FAILURES_TO_ACT} of the last {WINDOW_COHORTS} scoring cohorts fell short "
                     f"of what the champion promised by more than {settings.outcome_margin:.0%}. " + " | ".join(lines)
                     + f" Outcomes: {layout.page_uri}"
                     + (" Retraining is requested (CHURN_OUTCOME_RETRAIN)." if settings.outcome_retrain else "")),
            run_id=dag_run.run_id, run_key=newest)
        notified = notify_once(notification, backend.notification_channel(settings), store,
                               layout.notification_marker_uri(newest, notification.reason), log.info)
    return {"cohorts": len(records), "failed": len(failed), "sustained": sustained, "notified": notified,
            "retrain": notified and settings.outcome_retrain, "verdict": verdict, "page_uri": layout.page_uri}


def ask_for_retraining(*, verdict: Any, **_: Any) -> dict[str, Any]:
    """Succeed (and so emit ``churn_retrain``) only when this run's verdict asked for retraining."""
    if not verdict or not verdict.get("retrain"):
        raise AirflowSkipException("no retraining asked for: no new sustained failure, or CHURN_OUTCOME_RETRAIN off")
    log.info("retraining requested: %s", verdict["verdict"])
    return {"verdict": verdict["verdict"]}
