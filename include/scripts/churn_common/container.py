"""The SageMaker container contract, as the scripts honour it: where things are, how a failure is
reported, and outputs that appear all at once or not at all.

Paths default to SageMaker's under ``/opt/ml``, or under ``$SAGEMAKER_BASE_DIR`` where it is set
(the local runner gives each job its own workspace that way). A failure reason goes where SageMaker
reads it: ``output/message`` for processing jobs, ``output/failure`` for training jobs. The reason of
input that breaks the data contract begins ``<step> rejected its input: `` (``churn_common.contract``),
the signal on which the DAG side fails the task without a retry.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from churn_common.contract import bad_input_reason

SAGEMAKER_ROOT = "/opt/ml"
PROCESSING_REASON_FILE = "message"
TRAINING_REASON_FILE = "failure"
MAX_REASON_BYTES = 1024  # SageMaker keeps the first 1 KB of the reason; the log has all of it


class UsageError(Exception):
    """A wrong argument, or a file the command line names that is not there."""


class ContractError(Exception):
    """Input that breaks the data contract; carries every violation found."""

    def __init__(self, source: str, violations: Sequence[str]):
        self.source = source
        self.violations = list(violations)
        lines = "\n".join(f"  - {violation}" for violation in self.violations)
        super().__init__(f"{source}: {len(self.violations)} problem(s) found:\n{lines}")


def base_dir() -> Path | None:
    """The SageMaker root (``/opt/ml`` in a container, ``$SAGEMAKER_BASE_DIR`` in the local runner).

    None when running by hand on a laptop, where nothing must be written under ``/opt/ml``.
    """
    configured = os.environ.get("SAGEMAKER_BASE_DIR")
    if configured:
        return Path(configured)
    root = Path(SAGEMAKER_ROOT)
    return root if root.is_dir() else None


def container_path(relative: str) -> str:
    """A default path inside the container, e.g. ``processing/input/data``."""
    root = base_dir() or Path(SAGEMAKER_ROOT)
    return str(root / relative)


def write_failure_reason(reason_file: str, message: str) -> None:
    """Write the reason where SageMaker reads it (``output/message`` or ``output/failure``)."""
    root = base_dir()
    if root is None:
        return
    target = root / "output" / reason_file
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(message[:MAX_REASON_BYTES], encoding="utf-8")
    except OSError as error:  # the reason still reaches stderr and the exit code
        print(f"could not write the failure reason to {target}: {error}", file=sys.stderr)


def run_main(step: str, reason_file: str, body: Callable[[], object]) -> int:
    """Run a script body; turn known failures into one readable message and a non-zero exit code.

    Bad input (``ContractError``, ``UsageError``) and environment faults (``OSError``: disk full,
    permission denied) are expected: one message, no traceback. Anything else is a bug, so its
    traceback is printed as well.
    """
    try:
        body()
    except (ContractError, UsageError) as error:
        # in the contract's form, which the DAG side reads to fail the task without a retry: the same
        # input fails the same way again
        message = bad_input_reason(step, str(error))
    except OSError as error:
        message = f"{step} failed: {error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
    except Exception as error:  # reported with its traceback and a failing exit code, never swallowed
        traceback.print_exc()
        message = f"{step} failed with an unexpected error: {type(error).__name__}: {error}"
    else:
        return 0
    print(message, file=sys.stderr)
    write_failure_reason(reason_file, message)
    return 1


def exit_now(code: int) -> NoReturn:
    """End a step's process with ``code`` once its ``main`` has returned. Its outputs are written and
    closed by then, so the interpreter's teardown is skipped: unloading scikit-learn, SciPy and pandas
    module by module takes about 0.2 s and frees only memory that the process's end frees anyway."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def staged_output(output_dir: Path) -> Iterator[Path]:
    """Yield a private staging folder; move its contents into ``output_dir`` only on success.

    A failure leaves ``output_dir`` as it was (empty in a fresh job) and removes the staging folder,
    so no reader ever sees half of a step's outputs.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-staging-", dir=output_dir.parent))
    try:
        yield staging
        for child in sorted(staging.iterdir()):
            destination = output_dir / child.name
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(child, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def find_single_file(folder: Path, pattern: str) -> Path:
    matches = sorted(Path(folder).glob(pattern))
    if len(matches) != 1:
        raise UsageError(f"expected exactly one {pattern} in {folder}, found {len(matches)}")
    return matches[0]
