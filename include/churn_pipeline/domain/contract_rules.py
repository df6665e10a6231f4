"""The data contract's rules as the container scripts apply them, for ``stage_inputs`` to apply first.

The rules live in ``include/scripts/churn_common/schema_rules.py``, a standard-library-only file with
no import from its package. The DAG side loads that one file by path, as it reads ``defaults.json``
(``model_defaults``): the DAG side cannot import the container package (it is shipped to the jobs,
not installed here), and the container code must not import the DAG side (that would ship Airflow
code to the jobs). One file, both sides, so the check before a job and the check in it never differ.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

from churn_pipeline.domain.settings import SCRIPTS_DIR

RULES_FILE = SCRIPTS_DIR / "churn_common" / "schema_rules.py"


@cache
def rules() -> ModuleType:
    """``churn_common.schema_rules``, loaded from its file under a name of this package."""
    spec = importlib.util.spec_from_file_location("churn_pipeline._schema_rules", RULES_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the data contract's rules from {RULES_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
