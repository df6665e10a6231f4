"""Batch Transform on this machine: what SageMaker does between a transform job's input and output
files, around the model's own serving handlers.

The local runner starts this file with the image twin's Python (it imports nothing from the project,
only the standard library and the model's code; the names it shares with the DAG side, the joined
output's key and the media type, it reads from the shared contract file,
``include/scripts/churn_common/contract.json``), in the job's workspace, as the serving container
would be started: ``SAGEMAKER_SUBMIT_DIRECTORY`` names the model's code folder and ``SAGEMAKER_PROGRAM``
its inference module. It then does what Batch Transform does with ``SplitType`` ``Line``,
``BatchStrategy`` ``MultiRecord`` and JSON lines:

* reads each input file line by line, applies ``InputFilter`` to each line, and sends the lines in
  batches of at most ``MaxPayloadInMB``, holding one batch at a time (as SageMaker streams a file
  through the container), so a customer table of any size is scored in bounded memory;
* per batch, calls the module's ``input_fn`` -> ``predict_fn`` -> ``output_fn`` (after ``model_fn``
  once), which is the chain the scikit-learn serving container runs per request;
* splits the answer into one line per record, joins each to its input line under
  ``SageMakerOutput`` when ``JoinSource`` is ``Input``, applies ``OutputFilter``, and writes the
  lines to ``<input file>.out`` (every input file in turn, as its own output file).

The image's own serving package (``sagemaker_sklearn_container``) is built into the image from its
source repository, not published to PyPI, so the twin cannot hold it; the handlers it would call are
the model's own, which are what this exercises. Only the JSONPath forms the pipeline's requests use
are understood (``$`` and ``$['a','b']``); anything else is refused, never guessed.

    python local_transform.py --model-dir MODEL --input-dir IN --output-dir OUT \\
        --content-type application/jsonlines --accept application/jsonlines --max-payload-mb 6 \\
        --input-filter '$' --join-source Input --output-filter "$['CustomerID','SageMakerOutput']"
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

# The shared contract, found as the DAG side finds it (churn_pipeline.domain.settings.SCRIPTS_DIR):
# include/scripts beside this package.
CONTRACT_FILE = Path(__file__).resolve().parents[2] / "scripts" / "churn_common" / "contract.json"
_CONTRACT = json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))
JOINED_OUTPUT_KEY: str = _CONTRACT["keys"]["transform_joined_output"]
JSON_LINES: str = _CONTRACT["content_types"]["json_lines"]
_KEYS = re.compile(r"^\$\[('[^']*'(,'[^']*')*)\]$")


class TransformError(Exception):
    """The input, the filters or the model's answer cannot be handled as Batch Transform would."""


def select(record: Any, path: str) -> Any:
    """A JSONPath filter of the forms the pipeline uses: ``$`` (all) or ``$['a','b']`` (these keys)."""
    if path == "$":
        return record
    match = _KEYS.match(path.replace(" ", ""))
    if not match or not isinstance(record, dict):
        raise TransformError(f"unsupported JSONPath filter {path!r} (supported: $ and $['a','b'])")
    keys = [key.strip("'") for key in match.group(1).split(",")]
    return {key: record[key] for key in keys if key in record}


def batches(lines: Iterable[str], max_bytes: int) -> Iterator[list[str]]:
    """Consecutive lines whose total size stays within ``max_bytes`` (a longer single line is alone)."""
    batch: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode("utf-8")) + 1
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += length
    if batch:
        yield batch


def load_handlers() -> Any:
    """The inference module as the serving container finds it."""
    code = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY")
    program = os.environ.get("SAGEMAKER_PROGRAM")
    if not code or not program:
        raise TransformError("SAGEMAKER_SUBMIT_DIRECTORY and SAGEMAKER_PROGRAM name the model's inference code")
    sys.path.insert(0, code)
    return importlib.import_module(Path(program).stem)


def _records(source: Path) -> Iterator[Any]:
    """The file's records, one JSON line at a time (blank lines skipped), never the whole file."""
    with source.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def transform_file(handlers: Any, model: Any, source: Path, target: Path, args: argparse.Namespace) -> int:
    max_bytes = int(args.max_payload_mb * 1024 * 1024)
    records: list[Any] = []  # the current batch's records, for the join

    def filtered() -> Iterator[str]:
        for record in _records(source):
            records.append(record)
            yield json.dumps(select(record, args.input_filter))

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")  # a failed file leaves no output, as on SageMaker
    written = 0
    try:
        with partial.open("w", encoding="utf-8") as output:
            for batch in batches(filtered(), max_bytes):
                # the generator has read one line past the batch (the line that did not fit) or none at the end
                batch_records, records[:] = records[:len(batch)], records[len(batch):]
                body, _ = handlers.output_fn(handlers.predict_fn(handlers.input_fn("\n".join(batch), args.content_type),
                                                                 model), args.accept)
                answers = [line for line in (body.decode() if isinstance(body, bytes) else body).splitlines()
                           if line.strip()]
                if len(answers) != len(batch):
                    raise TransformError(f"the model answered {len(answers)} line(s) for a batch of {len(batch)} "
                                         "record(s)")
                for record, answer in zip(batch_records, answers, strict=True):
                    result = json.loads(answer)
                    joined = {**record, JOINED_OUTPUT_KEY: result} if args.join_source == "Input" else result
                    output.write(json.dumps(select(joined, args.output_filter)) + "\n")
                written += len(batch)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    print(f"transformed {written} record(s) of {source.name}")
    return written


def transform(args: argparse.Namespace) -> int:
    if args.content_type != JSON_LINES or args.accept != JSON_LINES:
        raise TransformError(f"this runner transforms {JSON_LINES} only, got {args.content_type} -> {args.accept}")
    sources = sorted(path for path in args.input_dir.rglob("*") if path.is_file())
    if not sources:
        raise TransformError(f"no input file under {args.input_dir}")
    for path in (args.input_filter, args.output_filter):
        select({}, path)  # a filter this runner cannot apply fails before anything is read or written
    handlers = load_handlers()
    model = handlers.model_fn(str(args.model_dir))
    for source in sources:
        relative = source.relative_to(args.input_dir)
        transform_file(handlers, model, source, args.output_dir / f"{relative}.out", args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--input-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--content-type", default=JSON_LINES)
    parser.add_argument("--accept", default=JSON_LINES)
    parser.add_argument("--max-payload-mb", type=float, default=6.0)
    parser.add_argument("--input-filter", default="$")
    parser.add_argument("--join-source", default="None", choices=("Input", "None"))
    parser.add_argument("--output-filter", default="$")
    parser.add_argument("--failure-file", type=Path, default=None, help="where the reason of a failure goes")
    args = parser.parse_args(argv)
    try:
        return transform(args)
    except Exception as error:  # reported as SageMaker reports a failed transform, then exit 1
        traceback.print_exc()
        message = f"the transform of {args.input_dir} failed: {type(error).__name__}: {error}"
        print(message, file=sys.stderr)
        if args.failure_file:
            args.failure_file.parent.mkdir(parents=True, exist_ok=True)
            args.failure_file.write_text(message[:1024], encoding="utf-8")
        return 1


if __name__ == "__main__":
    sys.exit(main())
