"""The fitted preprocessor: its statistics as preprocessing computes them, and the scikit-learn
ColumnTransformer the packaged model scores raw records with, built from them.

Preprocessing writes the statistics (``preprocessor.json``) and never loads scikit-learn: its two
passes over the rows compute them, and importing scikit-learn only to pickle a transformer would
cost the step a second (a quarter of it at a million customers). Training, which loads scikit-learn
anyway, builds the transformer from the file and packages it with the forest. The file is plain
JSON (floats as Python writes them, so they read back to the same bits), which any engine that
prepares the data can write.

    {"rows": 700231, "features": ["num__Age", ..., "cat__Contract_One year", ...],
     "numeric": {"Age": {"median": 41.0, "mean": 41.2, "variance": 190.3, "scale": 13.8}, ...},
     "categorical": {"Contract": {"mode": "Month-to-month", "categories": ["Month-to-month", ...]}, ...}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from churn_common.container import ContractError, find_single_file
from churn_common.data_contract import Schema

STATISTICS_FILE = "preprocessor.json"


def build_preprocessor(schema: Schema) -> Any:
    """Median / mode imputation, one-hot encoding tolerant of unknown categories, standard scaling."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
    ])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])
    return ColumnTransformer(
        [("num", numeric, list(schema.numeric)), ("cat", categorical, list(schema.categorical))],
        remainder="drop",
        verbose_feature_names_out=True,
    )


def statistics_file(folder: Path) -> Path:
    return find_single_file(folder, STATISTICS_FILE)


def read_statistics(folder: Path) -> dict[str, Any]:
    """The statistics file in ``folder``, checked as far as its keys go."""
    path = statistics_file(folder)
    try:
        fitted = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(str(path), [f"the preprocessor's statistics cannot be read: {error}"]) from None
    missing = [key for key in ("rows", "features", "numeric", "categorical") if key not in fitted]
    if missing:
        raise ContractError(str(path), [f"the preprocessor's statistics lack {', '.join(missing)}; was it written "
                                        "by preprocessing.py?"])
    return fitted


def fitted_preprocessor(schema: Schema, fitted: dict[str, Any], source: str = STATISTICS_FILE) -> Any:
    """``build_preprocessor`` holding the statistics: fitted on a few rows made so that the encoder
    finds exactly the training split's categories (everything derived from them is then
    scikit-learn's own), with the imputers' and the scaler's statistics set to the file's."""
    import numpy as np
    import pandas as pd

    numeric, categorical = fitted["numeric"], fitted["categorical"]
    absent = [name for name in schema.numeric if name not in numeric] + \
        [name for name in schema.categorical if name not in categorical]
    if absent:
        raise ContractError(source, [f"no statistics for column(s) {', '.join(absent)} of the schema"])
    size = max([2, *(len(categorical[name]["categories"]) for name in schema.categorical)])
    frame = {name: np.arange(size, dtype="float64") for name in schema.numeric}
    for name in schema.categorical:
        values = categorical[name]["categories"]
        frame[name] = np.array(values + [values[0]] * (size - len(values)), dtype=object)
    preprocessor = build_preprocessor(schema).fit(pd.DataFrame(frame)[list(schema.features)])
    if schema.numeric:
        numbers = preprocessor.named_transformers_["num"]
        numbers.named_steps["impute"].statistics_ = np.array([numeric[n]["median"] for n in schema.numeric])
        scaler = numbers.named_steps["scale"]
        scaler.mean_ = np.array([numeric[n]["mean"] for n in schema.numeric])
        scaler.var_ = np.array([numeric[n]["variance"] for n in schema.numeric])
        scaler.scale_ = np.array([numeric[n]["scale"] for n in schema.numeric])
        scaler.n_samples_seen_ = np.int64(fitted["rows"])
    if schema.categorical:
        imputer = preprocessor.named_transformers_["cat"].named_steps["impute"]
        imputer.statistics_ = np.array([categorical[n]["mode"] for n in schema.categorical], dtype=object)
    if list(preprocessor.get_feature_names_out()) != list(fitted["features"]):
        raise ContractError(source, ["the preprocessor's features differ from the ones its statistics name; was "
                                     "it written by preprocessing.py?"])
    return preprocessor
