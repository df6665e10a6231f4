"""Preprocessing step (SageMaker Processing job).

Reads every ``.csv`` (or every ``.parquet``) file under the input folder as one table, checks it
against the data contract (the schema), drops rows without a target and duplicate rows / ids, splits
it stratified and seeded into train / validation / test, fits imputation, encoding and scaling on the
training split only and writes:

    OUT/train/train.csv            label first, then the transformed features (with a header)
    OUT/validation/validation.csv
    OUT/test/test.csv
    OUT/preprocessor/preprocessor.joblib   the fitted ColumnTransformer
    OUT/preprocessor/schema.json           the contract it was fitted under
    OUT/quality/data_quality.json          counts of what was read, dropped and written
    OUT/holdout/holdout.parquet            the test split's customers as raw records (id, features, label):
                                           what evaluation scores every model on, each through its own
                                           packaged preprocessor
    OUT/profile/statistics.json            the training split's raw features profiled in Model Monitor's
    OUT/profile/constraints.json           formats: the baseline later runs measure drift against

By hand:  python include/scripts/preprocessing.py --input-dir IN --output-dir OUT [--schema FILE]
In the container the defaults are SageMaker's paths under /opt/ml/processing (or $SAGEMAKER_BASE_DIR).
On any contract violation it exits 1 with one message listing every problem and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn_common import container, contract, data_contract, defaults, profile, schema_rules, tables

STEP = "preprocessing"
SPLITS = ("train", "validation", "test")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path(container.container_path("processing/input/data")))
    parser.add_argument("--schema", type=Path, default=None, help="schema JSON file or folder holding one")
    parser.add_argument("--output-dir", type=Path, default=Path(container.container_path("processing/output")))
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=defaults.SEED)
    parser.add_argument("--min-rows", type=int, default=schema_rules.MIN_ROWS, help="fewest usable rows to train on")
    parser.add_argument("--min-class-rows", type=int, default=10, help="fewest usable rows of each class")
    args = parser.parse_args(argv)
    fractions = (args.train_fraction, args.validation_fraction, args.test_fraction)
    if any(fraction <= 0 for fraction in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise container.UsageError(f"split fractions must be positive and add up to 1, got {fractions}")
    if args.schema is None:
        shipped = Path(container.container_path("processing/input/schema"))
        args.schema = shipped if shipped.is_dir() else data_contract.DEFAULT_SCHEMA_FILE
    return args


def check_contract(frame: Any, schema: data_contract.Schema, source: str, min_rows: int, min_class_rows: int) -> dict:
    """Check the raw frame against the schema; return the counts, or raise listing every violation.

    Cells are text, except numeric columns that Parquet already stored as numbers. On success the
    frame's numeric columns hold numbers (parsed once where they were text, reused downstream).
    """
    import pandas as pd

    target = frame[schema.target_column]
    violations = []
    known = {schema.positive, schema.negative}
    present = target.notna()
    unknown = target[present & ~target.isin(known)].value_counts()
    if len(unknown):
        listed = ", ".join(f"'{value}' ({count})" for value, count in unknown.head(10).items())
        violations.append(
            f"column '{schema.target_column}' has values other than '{schema.positive}' / '{schema.negative}': {listed}"
        )
    numbers, not_numbers = tables.parse_numbers(frame, schema.numeric)
    for column, (count, examples) in not_numbers.items():
        shown = ", ".join(repr(example) for example in examples)
        violations.append(f"numeric column '{column}' has {count} non-numeric value(s), e.g. {shown}")
    if violations:  # counting classes on data with unknown labels would only add noise
        raise container.ContractError(source, violations)

    for column, values in numbers.items():
        frame[column] = values
    labelled = frame[present]
    # Rows are compared through a 64-bit hash of all their cells: several times faster than comparing
    # text, and a false match among a million rows has odds of about 1 in 10^8.
    repeated_rows = pd.util.hash_pandas_object(labelled, index=False).duplicated().to_numpy()
    deduplicated = labelled[~repeated_rows]
    duplicate_ids = 0
    if schema.id_column:
        with_id = deduplicated[schema.id_column].notna()
        repeated_ids = with_id & deduplicated.duplicated(subset=[schema.id_column], keep="first")
        duplicate_ids = int(repeated_ids.sum())
        deduplicated = deduplicated[~repeated_ids]
    class_counts = deduplicated[schema.target_column].value_counts()
    if len(deduplicated) < min_rows:
        violations.append(f"only {len(deduplicated)} usable row(s) after dropping duplicates and rows without a "
                          f"target; at least {min_rows} are needed")
    for label in (schema.positive, schema.negative):
        count = int(class_counts.get(label, 0))
        if count < min_class_rows:
            violations.append(f"column '{schema.target_column}' has {count} usable row(s) of class '{label}'; at least "
                              f"{min_class_rows} of each class are needed for a stratified split")
    if violations:
        raise container.ContractError(source, violations)
    return {
        "rows_read": len(frame),
        "rows_without_target": int((~present).sum()),
        "duplicate_rows": int(repeated_rows.sum()),
        "duplicate_ids": duplicate_ids,
        "rows_used": len(deduplicated),
        "class_counts": {label: int(class_counts.get(label, 0)) for label in (schema.negative, schema.positive)},
        "kept_index": deduplicated.index,
    }


def build_preprocessor(schema: data_contract.Schema) -> Any:
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


def split(frame: Any, labels: Any, fractions: tuple[float, float, float], seed: int) -> dict[str, Any]:
    """Stratified, seeded train / validation / test row positions."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    train_fraction, validation_fraction, test_fraction = fractions
    positions, classes = np.arange(len(frame)), labels.to_numpy()
    rest, test = train_test_split(positions, test_size=test_fraction, stratify=classes, random_state=seed)
    validation_share = validation_fraction / (train_fraction + validation_fraction)
    train, validation = train_test_split(rest, test_size=validation_share, stratify=classes[rest], random_state=seed)
    return {"train": train, "validation": validation, "test": test}


@dataclass(frozen=True)
class PreparedData:
    """The checked, de-duplicated customers as features and labels, and the rows of each split."""

    schema: data_contract.Schema
    features: Any
    labels: Any
    ids: Any  # the id column's values, None when the schema has no id column
    splits: dict[str, Any]
    summary: dict[str, Any]


def prepare(args: argparse.Namespace) -> PreparedData:
    """Read, check against the contract, de-duplicate and split: everything before any fitting."""
    schema = data_contract.load_schema(args.schema)
    files = tables.list_input_files(args.input_dir)
    wanted = list(schema.required_columns)
    frame, ignored, source = tables.read_customer_files(files, wanted, schema.numeric)
    print(f"read {len(frame)} row(s) from {source}")
    if ignored:
        print(f"ignoring {len(ignored)} column(s) the schema does not name: {', '.join(ignored)}")
    counts = check_contract(frame, schema, source, args.min_rows, args.min_class_rows)
    kept_index = counts.pop("kept_index")
    print(f"dropped {counts['rows_without_target']} row(s) without a target, {counts['duplicate_rows']} duplicate "
          f"row(s) and {counts['duplicate_ids']} duplicate id(s); {counts['rows_used']} row(s) remain")

    data = frame.loc[kept_index].reset_index(drop=True)
    labels = (data[schema.target_column] == schema.positive).astype("int64")
    missing_values = {column: int(data[column].isna().sum()) for column in schema.features}
    features = data_contract.features_from_text(data, schema)
    fractions = (args.train_fraction, args.validation_fraction, args.test_fraction)
    indices = split(features, labels, fractions, args.seed)
    summary = {
        "files": [path.name for path in files],
        "ignored_columns": ignored,
        **counts,
        "missing_values": missing_values,
        "splits": {
            name: {"rows": len(index), "positive": int(labels.iloc[index].sum())} for name, index in indices.items()
        },
        "seed": args.seed,
    }
    ids = data[schema.id_column] if schema.id_column else None
    return PreparedData(schema, features, labels, ids, indices, summary)


def holdout_records(prepared: PreparedData, rows: Any) -> Any:
    """The held-out customers as raw records: id, every feature as read (numbers parsed), the 0/1 label."""
    records = prepared.features.iloc[rows].reset_index(drop=True)
    if prepared.ids is not None:
        records.insert(0, prepared.schema.id_column, prepared.ids.iloc[rows].reset_index(drop=True))
    records[tables.TARGET_LABEL] = prepared.labels.iloc[rows].reset_index(drop=True).to_numpy()
    return records


def run(args: argparse.Namespace) -> dict:
    import joblib

    prepared = prepare(args)
    schema, features, labels, indices = prepared.schema, prepared.features, prepared.labels, prepared.splits
    preprocessor = build_preprocessor(schema)
    preprocessor.fit(features.iloc[indices["train"]])  # fitted on the training split only: no leakage
    feature_names = list(preprocessor.get_feature_names_out())

    summary = {**prepared.summary, "features": {"input": list(schema.features), "encoded": len(feature_names)}}
    with container.staged_output(args.output_dir) as staging:
        for name in SPLITS:
            index = indices[name]
            matrix = preprocessor.transform(features.iloc[index])
            tables.write_matrix_csv(staging / name / f"{name}.csv", labels.iloc[index], matrix, feature_names)
        tables.write_records(staging / "holdout" / "holdout.parquet",
                             holdout_records(prepared, indices["test"]))
        statistics, constraints = profile.build_profile(features.iloc[indices["train"]], schema)
        container.write_json(staging / "profile" / contract.FILES["statistics"], statistics)
        container.write_json(staging / "profile" / contract.FILES["constraints"], constraints)
        (staging / "preprocessor").mkdir()
        joblib.dump(preprocessor, staging / "preprocessor" / "preprocessor.joblib")
        container.write_json(staging / "preprocessor" / "schema.json", schema.to_dict())
        container.write_json(staging / "quality" / contract.FILES["data_quality"], summary)
    print("splits: " + ", ".join(f"{name} {info['rows']}" for name, info in summary["splits"].items()))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    return container.run_main(STEP, container.PROCESSING_REASON_FILE, lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
