"""Command line for the local backend: what the last run did, and approving a registered version.

    python -m churn_pipeline.cli summary [--run-key 20261126T020000Z]
    python -m churn_pipeline.cli versions
    python -m churn_pipeline.cli approve 3 [--status Rejected]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from churn_pipeline.layout import RunLayout
from churn_pipeline.objectstore import LocalObjectStore, ObjectStoreError
from churn_pipeline.registry import APPROVAL_STATUSES, APPROVED, MlflowRegistry
from churn_pipeline.settings import SettingsError, load_settings


class CliError(Exception):
    pass


def _runs(store: LocalObjectStore, base_uri: str) -> list[str]:
    runs_dir = store.path_for(f"{base_uri}/runs")
    return sorted(path.name for path in runs_dir.iterdir() if path.is_dir()) if runs_dir.is_dir() else []


def summary(run_key: str | None) -> str:
    settings = load_settings()
    if settings.backend != "local":
        raise CliError("summary reads the local backend's store; on SageMaker use the console or the registry")
    store = LocalObjectStore(settings.local_root)
    runs = _runs(store, settings.base_uri)
    if not runs:
        raise CliError(f"no run found under {store.path_for(settings.base_uri + '/runs')}; run `make demo` first")
    key = run_key or runs[-1]
    if key not in runs:
        raise CliError(f"no run {key}; known runs: {', '.join(runs)}")
    layout = RunLayout(settings.base_uri, key)
    lines = [f"run {key}", f"  artefacts     {store.path_for(layout.run_uri)}"]
    try:
        report = json.loads(store.read_bytes(layout.evaluation_file_uri))
        metrics = report["metrics"]
        lines.append("  test metrics  " + "  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        lines.append(f"  baseline      majority-class accuracy {report['baseline']['majority_class_accuracy']:.4f}")
    except ObjectStoreError:
        lines.append("  test metrics  none (the run stopped before evaluation)")
    try:
        quality = json.loads(store.read_bytes(f"{layout.preprocessing_uri('quality')}/data_quality.json"))
        lines.append(f"  customers     {quality['rows_read']} rows read, {quality['rows_used']} used "
                     f"({', '.join(quality['files'])})")
    except ObjectStoreError:
        pass
    registry = MlflowRegistry(settings.local_root)
    registered = [v for v in (registry.versions(settings.model_package_group)
                              if (settings.local_root / "mlflow.db").is_file() else [])
                  if v["tags"].get("run_key") == key]
    outbox = settings.local_root / "notifications.jsonl"
    notified = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.is_file() else []
    notified = [item for item in notified if item["run_key"] == key]
    if registered:
        version = registered[0]
        lines.append(f"  gate          passed: accuracy {version['tags']['accuracy']}")
        lines.append(f"  registered    {settings.model_package_group} version {version['version']} "
                     f"({version['tags'].get('approval_status')}) in {registry.uri}")
        lines.append(f"  data source   {version['tags'].get('data_source', 'not recorded')}")
    for item in notified:
        lines.append(f"  gate          not passed ({item['reason']}): {item['message']}")
        lines.append(f"  notified      {outbox}")
    if not registered and not notified:
        lines.append("  gate          no decision recorded (the run is still going, or failed before notifying)")
    lines.append(f"  registry UI   mlflow ui --backend-store-uri {registry.uri}")
    return "\n".join(lines)


def versions() -> str:
    settings = load_settings()
    registry = MlflowRegistry(settings.local_root)
    rows = [f"{v['version']:>4}  {v['tags'].get('approval_status', '?'):<22} accuracy {v['tags'].get('accuracy')}  "
            f"run {v['tags'].get('run_key')}" for v in registry.versions(settings.model_package_group)]
    return "\n".join(rows) or "no registered version yet"


def approve(version: int, status: str) -> str:
    settings = load_settings()
    registry = MlflowRegistry(settings.local_root)
    known = {v["version"] for v in registry.versions(settings.model_package_group)}
    if version not in known:
        raise CliError(f"no version {version} of {settings.model_package_group}; known: {sorted(known) or 'none'}")
    registry.set_approval(settings.model_package_group, version, status)
    return f"{settings.model_package_group} version {version} is now {status}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("summary", help="what a run did (default: the latest)")
    show.add_argument("--run-key")
    commands.add_parser("versions", help="the registered versions and their approval status")
    change = commands.add_parser("approve", help="set a version's approval status")
    change.add_argument("version", type=int)
    change.add_argument("--status", default=APPROVED, choices=APPROVAL_STATUSES)
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            print(summary(args.run_key))
        elif args.command == "versions":
            print(versions())
        else:
            print(approve(args.version, args.status))
    except (CliError, SettingsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
