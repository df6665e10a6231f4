"""The retention campaign's figures as run params: what keeping a churner is worth (``value_retained``),
what an offer costs (``offer_cost``) and the share of contacted churners it keeps (``offer_acceptance``).

The training job chooses the contact threshold from them on the validation split; evaluation values
both models' campaigns with them on the test split. Their rules and defaults live in the container
code (``include/scripts/churn_common/business.py``, ``Economics``), a file whose module-level imports
are the standard library's only; the DAG side loads that one file by path, as it loads the data
contract's rules (``contract_rules``), so that the check before any job and the job's own check never
differ. Pure: no Airflow import, nothing heavy.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Mapping
from functools import cache
from types import ModuleType
from typing import Any

from churn_pipeline.domain.settings import SCRIPTS_DIR

RULES_FILE = SCRIPTS_DIR / "churn_common" / "business.py"
PARAM_NAMES = ("value_retained", "offer_cost", "offer_acceptance")


@cache
def campaign_rules() -> ModuleType:
    """``churn_common.business``, loaded from its file under a name of this package."""
    name = "churn_pipeline._business_rules"
    spec = importlib.util.spec_from_file_location(name, RULES_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the campaign's rules from {RULES_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def default_economics() -> dict[str, float]:
    """The AWS churn example's cost matrix: a lost churner costs 500, an offer 100 and always keeps them."""
    defaults: dict[str, float] = campaign_rules().Economics().to_dict()
    return defaults


def economics_from_params(params: Mapping[str, Any]) -> dict[str, float]:
    """The run's campaign figures from its params (the defaults where absent); one ValueError naming
    every bad one."""
    values = {name: params.get(name, default) for name, default in default_economics().items()}
    not_numbers = [f"{name} must be a number, got {value!r}" for name, value in values.items()
                   if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)]
    if not_numbers:
        raise ValueError("; ".join(not_numbers))
    problems: list[str] = campaign_rules().Economics(**values).problems()
    if problems:
        raise ValueError("; ".join(problems))
    return {name: float(value) for name, value in values.items()}


def training_hyperparameters(economics: Mapping[str, float]) -> dict[str, float]:
    """The campaign figures as the training script's options (``--value-retained`` ...)."""
    return {name.replace("_", "-"): float(value) for name, value in economics.items()}
