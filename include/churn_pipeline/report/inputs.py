"""What one run's report is made from: the JSON files the pipeline wrote, read leniently."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReportInputs:
    """Everything one run's report shows, as the plain JSON values the pipeline wrote.

    ``decision`` is the gate decision (``GateDecision`` with the champion and drift rules' fields);
    ``evaluation``, ``details`` and ``drift`` come from the evaluation job, ``quality`` from
    preprocessing. ``details`` is None when the job wrote no curves, ``drift`` when the drift check
    is off or has no file, ``quality`` when preprocessing's summary is not there. ``notes`` say what
    could not be read; the report shows them rather than failing.
    """

    run_key: str
    run_id: str
    dag_id: str
    backend: str
    decision: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    details: Mapping[str, Any] | None
    drift: Mapping[str, Any] | None
    quality: Mapping[str, Any] | None
    links: Sequence[Mapping[str, str]] = ()
    notes: Sequence[str] = ()
    engine: Mapping[str, Any] | None = None  # engine.json: which engine stage_inputs chose, and why

    @classmethod
    def from_json(cls, *, run_key: str, run_id: str, dag_id: str, backend: str,
                  decision: Mapping[str, Any] | bytes, evaluation: bytes | None, details: bytes | None = None,
                  drift: bytes | None = None, quality: bytes | None = None,
                  links: Sequence[Mapping[str, str]] = (), engine: bytes | None = None) -> ReportInputs:
        """Build the inputs from the files' bytes (None: the file does not exist).

        A file that is not a JSON object is read as absent and named in ``notes``: a report with a
        hole that says so is more use than no report, and the gate has already judged the run.
        """
        notes: list[str] = []
        decision_object = decision if isinstance(decision, Mapping) else _json_object("the gate decision", decision,
                                                                                      notes)
        evaluation_object = _json_object("evaluation.json", evaluation, notes)
        engine_object = _json_object("engine.json", engine, notes)
        if evaluation is None:
            notes.append("evaluation.json was not found")
        return cls(run_key=run_key, run_id=run_id, dag_id=dag_id, backend=backend,
                   decision=decision_object or {}, evaluation=evaluation_object or {},
                   details=_json_object("details.json", details, notes),
                   drift=_json_object("drift.json", drift, notes),
                   quality=_json_object("data_quality.json", quality, notes),
                   links=tuple(links), notes=tuple(notes), engine=engine_object)


def _json_object(name: str, raw: bytes | None, notes: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        notes.append(f"{name} is not valid JSON ({error})")
        return None
    if not isinstance(value, dict):
        notes.append(f"{name} holds a JSON {type(value).__name__}, not an object")
        return None
    return value
