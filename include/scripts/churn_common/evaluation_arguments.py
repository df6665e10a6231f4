"""The arguments both engines' evaluations take (evaluation.py, spark/evaluate_spark.py): who the
champion is and how it comes (its model, its scores from the other engine's image, or why it cannot
be used), ``--write-scores``, the baseline profile drift is measured against, and where they write.
The DAG side's request builders send the same options to either script."""

from __future__ import annotations

import argparse
from pathlib import Path

from churn_common import container, defaults


def add_arguments(parser: argparse.ArgumentParser, champion_help: str) -> None:
    parser.add_argument("--champion", type=Path, default=None, help=champion_help)
    parser.add_argument("--champion-identifier", default=None, help="its registry identifier (ARN or models:/ URI)")
    parser.add_argument("--champion-version", type=int, default=None)
    parser.add_argument("--champion-unavailable", default=None, metavar="REASON",
                        help="there is a champion, but its model cannot be used (recorded as not comparable)")
    parser.add_argument("--champion-scores", type=Path, default=None, metavar="FOLDER",
                        help="the champion of the other engine, as its own image scored these customers "
                             "(champion_scores.npz with its decision.json, from --write-scores)")
    parser.add_argument("--write-scores", action="store_true",
                        help="only score the held-out customers with --model and write champion_scores.npz "
                             "with its decision.json to --output-dir: this image scoring its champion for a "
                             "run of the other engine")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="folder with the baseline profile's statistics.json (default: the 'baseline' input)")
    parser.add_argument("--baseline-identifier", default=None)
    parser.add_argument("--baseline-version", type=int, default=None)
    parser.add_argument("--baseline-uri", default=None, help="where the baseline profile lives, for the report")
    parser.add_argument("--baseline-unavailable", default=None, metavar="REASON",
                        help="there is a baseline version, but its profile cannot be used")
    parser.add_argument("--no-drift", dest="drift", action="store_false", help="do not measure drift")
    parser.add_argument("--output-dir", type=Path,
                        default=Path(container.container_path("processing/output/evaluation")))
    parser.add_argument("--seed", type=int, default=defaults.SEED)


def job_input(name: str) -> Path:
    return Path(container.container_path(f"processing/input/{name}"))


def given_input(name: str) -> Path | None:
    """The job's input folder ``name``, where the job was given one that holds anything."""
    folder = job_input(name)
    return folder if folder.is_dir() and any(folder.iterdir()) else None
