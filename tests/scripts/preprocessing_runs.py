"""What the preprocessing tests share: a run of preprocessing.py in the image twin on a folder of
input, the rows it is given, and the fitted statistics of the preprocessor it persists (as the
scikit-learn transformer training builds from them holds them)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import HEADER, make_rows, run_script

ROWS = make_rows(120)


def preprocess(tmp_path: Path, *extra: str | Path):
    base = tmp_path / "ml"
    out = tmp_path / "out"
    out.mkdir()  # as in the container, where SageMaker creates each output folder before the script runs
    result = run_script("preprocessing.py", "--input-dir", tmp_path / "in", "--output-dir", out, *extra,
                        env={"SAGEMAKER_BASE_DIR": str(base)})
    return result, out, base


def replace_cell(row: str, column: str, value: str) -> str:
    cells = row.split(",")
    cells[HEADER.split(",").index(column)] = value
    return ",".join(cells)


def packaged_preprocessor(out: Path):
    """The scikit-learn preprocessor training packages, built from what preprocessing wrote to OUT."""
    from churn_common import data_contract, preprocessor

    schema = data_contract.load_schema(out / "preprocessor" / "schema.json")
    return preprocessor.fitted_preprocessor(schema, preprocessor.read_statistics(out / "preprocessor"))


def fitted_statistics(preprocessor) -> dict[str, list]:
    """What imputation, scaling and encoding learned from the rows they were fitted on."""
    numeric, categorical = preprocessor.named_transformers_["num"], preprocessor.named_transformers_["cat"]
    return {
        "medians": numeric.named_steps["impute"].statistics_.tolist(),
        "means": numeric.named_steps["scale"].mean_.tolist(),
        "scales": numeric.named_steps["scale"].scale_.tolist(),
        "modes": categorical.named_steps["impute"].statistics_.tolist(),
        "categories": [values.tolist() for values in categorical.named_steps["encode"].categories_],
    }
