"""Command line for the local backend: what a run did, the registered versions, the champion, and
approving or rejecting a version.

    churn summary [--run-key 20261126T020000Z]
    churn report [--run-key 20261126T020000Z]     the path of a run's report.html
    churn scores [--run-key 20261126T060000Z]     a scoring run's most at risk
    churn outcomes                                the measured cohorts: realised against promised, the verdict
    churn versions
    churn champion
    churn approve 3      makes version 3 Approved; the newest approved is the champion
    churn reject 3

``churn`` is this module's console script, which the editable install puts in ``.venv/bin``.

On the sagemaker backend, approve in SageMaker (Studio's model registry, or
``aws sagemaker update-model-package --model-package-arn ARN --model-approval-status Approved``);
``champion`` works on both backends.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from churn_pipeline.domain.layout import OutcomeLayout, RunLayout, ScoringLayout
from churn_pipeline.domain.run_params import (
    APPROVAL_DAG,
    OUTCOME_DAG,
    PIPELINE_DAG,
    SCORING_DAG,
    RunParam,
    approval_params,
    check_conf,
    outcome_params,
    pipeline_params,
    scoring_params,
)
from churn_pipeline.domain.settings import DEFAULT_SCHEMA_FILE, Settings, SettingsError, load_settings
from churn_pipeline.report.summary import scoring_lines, shown_by, summary_lines
from churn_pipeline.services.objectstore import LocalObjectStore, ObjectStoreError
from churn_pipeline.services.registry import APPROVAL_STATUSES, APPROVED, REJECTED, MlflowRegistry

COMMAND = ".venv/bin/churn"  # as a person types it in the project folder, whatever their PATH
# MLflow's default port, 5000, is taken on macOS (AirPlay): a port that is usually free, and loopback only
MLFLOW_UI = ".venv/bin/mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5050"
GROUP_LINE = "  group         "


class CliError(Exception):
    pass


def _local(settings: Settings, command: str) -> LocalObjectStore:
    if settings.backend != "local":
        raise CliError(f"{command} reads the local backend's store; on SageMaker use the console or the registry")
    return LocalObjectStore(settings.local_root)


def _runs(store: LocalObjectStore, base_uri: str, area: str) -> list[Path]:
    """The runs of ``area`` (``runs``, ``scoring``), the one written to last at the end (a backfilled date
    may be newer than a later key). A run is its own prefix or, for one that could not write there or
    stopped before it did (no champion to score with), its sent-once notifications beside it."""
    latest: dict[str, Path] = {}
    for uri in (f"{base_uri}/{area}", f"{base_uri}/notifications/{area}"):
        folder = store.path_for(uri)
        for path in (path for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else ():
            if path.name not in latest or latest[path.name].stat().st_mtime < path.stat().st_mtime:
                latest[path.name] = path
    return sorted(latest.values(), key=lambda path: (path.stat().st_mtime, path.name))


def _run_key(store: LocalObjectStore, base_uri: str, area: str, run_key: str | None,
             started_after: float | None = None, kind: str = "run", log: str | None = None) -> str:
    """The run asked for, else the one written to last; with ``started_after`` (a make target's start),
    that one must have been written since, so that a run which wrote nothing is not shown an older one."""
    runs = _runs(store, base_uri, area)
    if started_after is not None and (not runs or runs[-1].stat().st_mtime < started_after):
        raise CliError(f"the {kind} wrote nothing: it stopped before its first task{_why(log)}")
    if not runs:
        raise CliError(f"no {kind} found under {store.path_for(f'{base_uri}/{area}')}; run `make demo` first")
    if run_key:
        if run_key not in {path.name for path in runs}:
            raise CliError(f"no {kind} {run_key}; known: {', '.join(sorted(path.name for path in runs))}")
        return run_key
    return runs[-1].name


# A task's own refusal, as `airflow dags test` logs it; else the last line of a Python traceback
TASK_REFUSAL = re.compile(r"AirflowFailException: (.+)")
TRACEBACK_END = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception)): (.+)$")


def failure_in_log(text: str) -> str | None:
    """Why a run failed, in the one line its log has for it: the first task refusal (``AirflowFailException``,
    the sentence a task wrote for a person), else the last traceback's error; None when the log has neither."""
    refusal = TASK_REFUSAL.search(text)
    if refusal:
        return refusal.group(1).strip()
    ends = [found for found in map(TRACEBACK_END.match, text.splitlines()) if found]
    return f"{ends[-1].group(1)}: {ends[-1].group(2).strip()}" if ends else None


def _why(log: str | None) -> str:
    """What ``failure_in_log`` finds in the Airflow log at ``log``, said after a failure's first words."""
    found = failure_in_log(Path(log).read_text(errors="replace")) if log and Path(log).is_file() else None
    return f": {found} (its Airflow log: {log})" if found else f" (see its Airflow log{': ' + log if log else ''})"


def _registry_uri(settings: Settings) -> str:
    return MlflowRegistry(settings.local_root).uri


def summary(run_key: str | None, started_after: float | None = None, log: str | None = None) -> str:
    """The lines the run's last task logged (``run_summary``), with where to look further on this machine."""
    settings = load_settings()
    store = _local(settings, "summary")
    key = _run_key(store, settings.base_uri, "runs", run_key, started_after, log=log)
    lines = summary_lines(store, RunLayout(settings.base_uri, key), shown_by(store))
    outbox = settings.local_root / "notifications.jsonl"
    if any(line.startswith("  notified") for line in lines):
        lines.append(f"  messages      {outbox}")
    group = next((line[len(GROUP_LINE):] for line in lines if line.startswith(GROUP_LINE)),
                 settings.model_package_group)  # the run's own group, which this shell may not have set
    lines.append(f"  versions      make versions GROUP={group}")
    lines.append(f"  registry UI   {MLFLOW_UI.format(uri=_registry_uri(settings))}")
    return "\n".join(lines)


def report_path(run_key: str | None) -> str:
    settings = load_settings()
    store = _local(settings, "report")
    key = _run_key(store, settings.base_uri, "runs", run_key)
    layout = RunLayout(settings.base_uri, key)
    if not store.exists(layout.report_file_uri):
        raise CliError(f"run {key} has no report: it stopped before the gate (see `{COMMAND} summary --run-key {key}`)")
    return str(store.path_for(layout.report_file_uri))


def scores(run_key: str | None, started_after: float | None = None, log: str | None = None) -> str:
    """A scoring run's summary: customers per risk band, the most at risk, where the scores are."""
    settings = load_settings()
    store = _local(settings, "scores")
    key = _run_key(store, settings.base_uri, "scoring", run_key, started_after, kind="scoring run", log=log)
    try:
        found = json.loads(store.read_bytes(ScoringLayout(settings.base_uri, key).summary_file_uri))
    except ObjectStoreError:
        raise CliError(f"scoring run {key} produced no scores{_why(log)}") from None
    return "\n".join(scoring_lines(found, shown_by(store)))


def versions() -> str:
    settings = load_settings()
    found = MlflowRegistry(settings.local_root).versions(settings.model_package_group) \
        if (settings.local_root / "mlflow.db").is_file() else []
    if not found:
        return f"no registered version of {settings.model_package_group} yet ({_registry_uri(settings)})"
    header = f"{'version':>7}  {'status':<22} {'accuracy':>8} {'roc_auc':>8}  {'run':<16}  data source"
    rows = [f"{settings.model_package_group} in {_registry_uri(settings)}", header]
    for version in found:
        tags = version["tags"]
        marker = " *" if "champion" in version.get("aliases", []) else ""
        rows.append(f"{version['version']:>7}  {tags.get('approval_status', '?') + marker:<22} "
                    f"{float(tags.get('accuracy', 'nan')):>8.4f} {float(tags.get('roc_auc', 'nan')):>8.4f}  "
                    f"{tags.get('run_key', '?'):<16}  {tags.get('data_source', '?')}")
    rows.append("* the champion: the newest approved version, which new models are compared with")
    return "\n".join(rows)


def champion() -> str:
    from churn_pipeline.services import backend

    settings = load_settings()
    found = backend.model_registry(settings).champion(settings.model_package_group)
    if found is None:
        return (f"no approved version of {settings.model_package_group} yet: new models are compared with none "
                "(approve one with `make approve VERSION=N`)")
    metrics = "  ".join(f"{name} {value:.4f}" for name, value in found.metrics.items()) or "(not recorded)"
    return (f"champion of {settings.model_package_group}: version {found.version} ({found.identifier})\n"
            f"  trained by run {found.run_key}\n  metrics when registered  {metrics}\n  model  {found.model_uri}")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container without a passwd entry
        return "an unnamed local user"


def set_status(version: int, status: str) -> str:
    settings = load_settings()
    if settings.backend != "local":
        raise CliError("approve and reject act on the local registry; on SageMaker answer the version's review in "
                       "Airflow (customer_churn_review), or use Studio's model registry or "
                       "`aws sagemaker update-model-package --model-package-arn ARN --model-approval-status Approved`")
    registry = MlflowRegistry(settings.local_root)
    known = {v["version"] for v in registry.versions(settings.model_package_group)} \
        if (settings.local_root / "mlflow.db").is_file() else set()
    if version not in known:
        raise CliError(f"no version {version} of {settings.model_package_group}; known: {sorted(known) or 'none'}")
    from churn_pipeline.tasks.review import record_decision  # Airflow's SDK, imported only for a decision

    decision = record_decision(settings, version=version, status=status, decided_by=_user(), via=COMMAND,
                               reason=f"{COMMAND} {'approve' if status == APPROVED else 'reject'} {version}",
                               identifier=f"models:/{settings.model_package_group}/{version}")
    now_champion = decision["champion"]
    crowned = f"version {now_champion} is the champion" if now_champion else "no version is approved: no champion"
    return f"{settings.model_package_group} version {version} is now {status}; {crowned}"


def outcomes() -> str:
    """Every measured cohort, realised against promised on what it was judged on, and the verdict."""
    from churn_pipeline.domain.outcomes import FAILURES_TO_ACT, WINDOW_COHORTS, sustained_failure

    settings = load_settings()
    store, layout = LocalObjectStore(settings.local_root), OutcomeLayout(settings.base_uri)
    folder = store.path_for(layout.outcomes_uri)
    records = [json.loads(path.read_text()) for path in sorted(folder.glob("*/outcome.json"))] \
        if folder.is_dir() else []
    if not records:
        raise CliError("no cohort measured yet: the customer_churn_outcomes DAG measures a scoring run "
                       f"{settings.label_horizon_days} days after it (CHURN_LABEL_HORIZON_DAYS)")

    def figure(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    lines = ["cohort             version  coverage  judged on        ROC AUC (promised)  lift@10 (promised)  verdict"]
    for record in records:
        judged, promised = record[record["judged_on"]], record["promised"]
        lines.append(f"{record['cohort']}   {record['model']['version']:>7}  {record['coverage']:>8.1%}  "
                     f"{record['judged_on'] + ' (' + str(judged['customers']) + ')':<15}  "
                     f"{figure(judged.get('roc_auc'), '.3f'):>7} ({figure(promised.get('roc_auc'), '.3f')})     "
                     f"{figure(judged.get('lift_at_10'), '.2f'):>7} ({figure(promised.get('lift_at_10'), '.2f')})     "
                     + ("failed: " + "; ".join(record["reasons"]) if record["failed"] else "passed"))
    window = records[-WINDOW_COHORTS:]
    failed = sum(record["failed"] for record in window)
    sustained = sustained_failure([record["failed"] for record in records])
    verdict = ("retrain: " if sustained else "keep the champion: ") + f"{failed} of the last {len(window)} " \
        f"cohort(s) failed ({FAILURES_TO_ACT} of {WINDOW_COHORTS} ask for retraining)"
    lines += [f"verdict  {verdict}", f"page     {store.path_for(layout.page_uri)}"]
    return "\n".join(lines)


def dag_params(dag_id: str, settings: Settings) -> tuple[RunParam, ...]:
    """The params of one of the project's DAGs, as the DAG file defines them."""
    if dag_id == OUTCOME_DAG:
        return outcome_params(settings.default_input_uri)
    if dag_id == PIPELINE_DAG:
        return pipeline_params(settings.default_input_uri, str(DEFAULT_SCHEMA_FILE), settings.engine)
    if dag_id == SCORING_DAG:
        return scoring_params(settings.default_input_uri)
    return approval_params(APPROVAL_STATUSES, APPROVED)


def run_conf(input_path: str, schema_path: str, conf: str, dag_id: str = PIPELINE_DAG, version: str = "") -> str:
    """A make target's params as the JSON ``airflow dags test --conf`` takes: CONF's, with INPUT and
    SCHEMA as ``input_uri`` and ``schema_uri`` (local paths made absolute: the run's tasks do not run
    in the folder make was started in) and VERSION as ``version``; checked against the DAG's params
    first, so that a mistake is one line and nothing is started."""
    try:
        params = json.loads(conf) if conf.strip() else {}
    except json.JSONDecodeError as error:
        raise CliError(f"CONF is not JSON ({error.msg} at character {error.pos}): {conf}") from None
    if not isinstance(params, dict):
        raise CliError(f"CONF must be a JSON object of params, like '{{\"accuracy_threshold\": 0.8}}': {conf}")
    for param, value in (("input_uri", input_path), ("schema_uri", schema_path)):
        if value.strip():
            params[param] = value if "://" in value else str(Path(value).expanduser().resolve())
    if version.strip():
        if not version.strip().isdigit():
            raise CliError(f"VERSION must be a version number (`make versions` lists them), not {version!r}")
        params["version"] = int(version)
    check_conf(dag_params(dag_id, load_settings()), params, dag_id)
    return json.dumps(params)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="churn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("summary", "what a run did (default: the latest)"),
                       ("report", "the path of a run's report.html (default: the latest run)"),
                       ("scores", "a scoring run's customers per risk band, the most at risk (default: the latest)")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--run-key")
        if name != "report":  # make's targets: the run they started, never an older one, and its log
            command.add_argument("--started-after", type=float, help=argparse.SUPPRESS)
            command.add_argument("--log", help=argparse.SUPPRESS)
    commands.add_parser("versions", help="the registered versions, their status, metrics and data source")
    commands.add_parser("champion", help="the current champion and its metrics")
    commands.add_parser("outcomes", help="the measured scoring cohorts, realised against promised, and the verdict")
    for name, text in (("approve", "approve a version (the newest approved one is the champion)"),
                       ("reject", "reject a version")):
        command = commands.add_parser(name, help=text)
        command.add_argument("version", type=int)
    conf = commands.add_parser("conf", help="make run's params as JSON: --conf, with --input and --schema "
                                             "(by default $CONF, $INPUT and $SCHEMA, as make passes them)")
    for option in ("input", "schema", "conf", "version"):
        conf.add_argument(f"--{option}", default=os.environ.get(option.upper(), ""))
    conf.add_argument("--dag", choices=(PIPELINE_DAG, SCORING_DAG, APPROVAL_DAG, OUTCOME_DAG), default=PIPELINE_DAG,
                      help="the DAG whose params these are")
    args = parser.parse_args(argv)
    try:
        if args.command == "conf":
            print(run_conf(args.input, args.schema, args.conf, args.dag, args.version))
        elif args.command == "summary":
            print(summary(args.run_key, args.started_after, args.log))
        elif args.command == "report":
            print(report_path(args.run_key))
        elif args.command == "scores":
            print(scores(args.run_key, args.started_after, args.log))
        elif args.command == "versions":
            print(versions())
        elif args.command == "champion":
            print(champion())
        elif args.command == "outcomes":
            print(outcomes())
        else:
            print(set_status(args.version, APPROVED if args.command == "approve" else REJECTED))
    except (CliError, SettingsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
