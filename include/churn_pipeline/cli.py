"""Command line for the local backend: what a run did, the registered versions, the champion, and
approving or rejecting a version.

    python -m churn_pipeline.cli summary [--run-key 20261126T020000Z]
    python -m churn_pipeline.cli report [--run-key 20261126T020000Z]     the path of a run's report.html
    python -m churn_pipeline.cli versions
    python -m churn_pipeline.cli champion
    python -m churn_pipeline.cli approve 3      makes version 3 Approved; the newest approved is the champion
    python -m churn_pipeline.cli reject 3

On the sagemaker backend, approve in SageMaker (Studio's model registry, or
``aws sagemaker update-model-package --model-package-arn ARN --model-approval-status Approved``);
``champion`` works on both backends.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from churn_pipeline.layout import RunLayout
from churn_pipeline.objectstore import LocalObjectStore, ObjectStoreError
from churn_pipeline.registry import APPROVED, REJECTED, MlflowRegistry
from churn_pipeline.settings import Settings, SettingsError, load_settings

MLFLOW_UI = ".venv/bin/mlflow ui --backend-store-uri {uri}"


class CliError(Exception):
    pass


def _local(settings: Settings, command: str) -> LocalObjectStore:
    if settings.backend != "local":
        raise CliError(f"{command} reads the local backend's store; on SageMaker use the console or the registry")
    return LocalObjectStore(settings.local_root)


def _runs(store: LocalObjectStore, base_uri: str) -> list[str]:
    """The run keys, the run written to last at the end (a backfilled date may be newer than a later key)."""
    runs_dir = store.path_for(f"{base_uri}/runs")
    folders = [path for path in runs_dir.iterdir() if path.is_dir()] if runs_dir.is_dir() else []
    return [path.name for path in sorted(folders, key=lambda path: (path.stat().st_mtime, path.name))]


def _run_key(store: LocalObjectStore, settings: Settings, run_key: str | None) -> str:
    runs = _runs(store, settings.base_uri)
    if not runs:
        raise CliError(f"no run found under {store.path_for(settings.base_uri + '/runs')}; run `make demo` first")
    key = run_key or runs[-1]
    if key not in runs:
        raise CliError(f"no run {key}; known runs: {', '.join(sorted(runs))}")
    return key


def _read_json(store: LocalObjectStore, uri: str) -> Any:
    try:
        return json.loads(store.read_bytes(uri))
    except ObjectStoreError:
        return None


def _registry_uri(settings: Settings) -> str:
    return MlflowRegistry(settings.local_root).uri


def summary(run_key: str | None) -> str:
    settings = load_settings()
    store = _local(settings, "summary")
    key = _run_key(store, settings, run_key)
    layout = RunLayout(settings.base_uri, key)
    lines = [f"run {key}", f"  artefacts     {store.path_for(layout.run_uri)}"]
    report = _read_json(store, layout.evaluation_file_uri)
    if report:
        metrics = report["metrics"]
        lines.append("  test metrics  " + "  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        lines.append(f"  baseline      majority-class accuracy {report['baseline']['majority_class_accuracy']:.4f}")
        champion = report.get("champion")
        if champion and champion.get("comparable"):
            lines.append(f"  champion      version {champion['version']}: " + "  ".join(
                f"{name} {value:.4f}" for name, value in champion["metrics"].items()))
        elif champion:
            lines.append(f"  champion      version {champion['version']}, not comparable: {champion['reason']}")
        else:
            lines.append("  champion      none approved yet")
    else:
        lines.append("  test metrics  none (the run stopped before evaluation)")
    quality = _read_json(store, f"{layout.preprocessing_uri('quality')}/data_quality.json")
    if quality:
        lines.append(f"  customers     {quality['rows_read']} rows read, {quality['rows_used']} used "
                     f"({', '.join(quality['files'])})")
    decision = _read_json(store, layout.decision_file_uri)
    if decision:
        verdict = "passed" if decision["passed"] else f"not passed ({', '.join(decision['reasons'])})"
        lines.append(f"  gate          {verdict}")
        lines += [f"                - {sentence}" for sentence in decision["details"]]
    registered = [version for version in MlflowRegistry(settings.local_root).versions(settings.model_package_group)
                  if version["tags"].get("run_key") == key] if (settings.local_root / "mlflow.db").is_file() else []
    for version in registered:
        lines.append(f"  registered    {settings.model_package_group} version {version['version']} "
                     f"({version['tags'].get('approval_status')}) in {_registry_uri(settings)}")
        lines.append(f"  data source   {version['tags'].get('data_source', 'not recorded')}")
    outbox = settings.local_root / "notifications.jsonl"
    notified = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.is_file() else []
    for item in (item for item in notified if item["run_key"] == key):
        lines.append(f"  notified      {item['reason']}: {item['subject']} ({outbox})")
        if item.get("failed_tasks") and not decision:
            lines.append(f"  failed at     {', '.join(item['failed_tasks'])}")
    if not decision and not registered and not any(item["run_key"] == key for item in notified):
        lines.append("  gate          no decision recorded: the run is still going, or failed before the gate "
                     f"(see its task logs; job logs under {settings.local_root / 'jobs'})")
    if store.exists(layout.report_file_uri):
        lines.append(f"  report        {store.path_for(layout.report_file_uri)}")
    lines.append(f"  registry UI   {MLFLOW_UI.format(uri=_registry_uri(settings))}")
    return "\n".join(lines)


def report_path(run_key: str | None) -> str:
    settings = load_settings()
    store = _local(settings, "report")
    key = _run_key(store, settings, run_key)
    layout = RunLayout(settings.base_uri, key)
    if not store.exists(layout.report_file_uri):
        raise CliError(f"run {key} has no report: it stopped before the gate (see `cli summary --run-key {key}`)")
    return str(store.path_for(layout.report_file_uri))


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
    from churn_pipeline import backend

    settings = load_settings()
    found = backend.model_registry(settings).champion(settings.model_package_group)
    if found is None:
        return (f"no approved version of {settings.model_package_group} yet: new models are compared with none "
                "(approve one with `.venv/bin/python -m churn_pipeline.cli approve N`)")
    metrics = "  ".join(f"{name} {value:.4f}" for name, value in found.metrics.items()) or "(not recorded)"
    return (f"champion of {settings.model_package_group}: version {found.version} ({found.identifier})\n"
            f"  trained by run {found.run_key}\n  metrics when registered  {metrics}\n  model  {found.model_uri}")


def set_status(version: int, status: str) -> str:
    settings = load_settings()
    if settings.backend != "local":
        raise CliError("approve and reject act on the local registry; on SageMaker use Studio's model registry or "
                       "`aws sagemaker update-model-package --model-package-arn ARN --model-approval-status Approved`")
    registry = MlflowRegistry(settings.local_root)
    known = {v["version"] for v in registry.versions(settings.model_package_group)} \
        if (settings.local_root / "mlflow.db").is_file() else set()
    if version not in known:
        raise CliError(f"no version {version} of {settings.model_package_group}; known: {sorted(known) or 'none'}")
    now_champion = registry.set_approval(settings.model_package_group, version, status)
    crowned = f"version {now_champion} is the champion" if now_champion else "no version is approved: no champion"
    return f"{settings.model_package_group} version {version} is now {status}; {crowned}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("summary", "what a run did (default: the latest)"),
                       ("report", "the path of a run's report.html (default: the latest run)")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--run-key")
    commands.add_parser("versions", help="the registered versions, their status, metrics and data source")
    commands.add_parser("champion", help="the current champion and its metrics")
    for name, text in (("approve", "approve a version (the newest approved one is the champion)"),
                       ("reject", "reject a version")):
        command = commands.add_parser(name, help=text)
        command.add_argument("version", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            print(summary(args.run_key))
        elif args.command == "report":
            print(report_path(args.run_key))
        elif args.command == "versions":
            print(versions())
        elif args.command == "champion":
            print(champion())
        else:
            print(set_status(args.version, APPROVED if args.command == "approve" else REJECTED))
    except (CliError, SettingsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
