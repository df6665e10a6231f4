"""The inputs of preprocess_spark.py beside preprocessing.py's: a table in Parquet parts (numbers
stored as numbers, NaN, numbers stored as text, blank text) is read as the other step reads it; bad
input gets the same reason as preprocessing.py gives (the contract's form, where SageMaker reads it),
a failing exit code, no traceback, and nothing written, neither the driver's files nor the data sets.
The Spark runs share one spark-submit, each step with its own SageMaker folder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import CONFIG, HEADER, make_rows, run_script, write_csv
from tests.spark.spark_jobs import run_spark_steps, shared_code_zip

CASES = {
    # a column the schema names is spelled otherwise in the file
    "missing column": [HEADER.replace("Tenure", "tenure"), *make_rows(80)],
    "header only": [HEADER],
    # a quoted field never closed would swallow the rest of the file as one cell
    "unclosed quote": [HEADER, *make_rows(80)[:-1], make_rows(80)[-1].replace(",Male,", ',"Male,')
                       .replace(",Female,", ',"Female,')],
}

# a baseline profile's statistics.json as given, or None: the baseline folder holds none
BAD_BASELINES = {"baseline not json": '{"features": [', "baseline missing": None}


# One worker runs the whole module: its module-scoped fixtures are the module's Spark runs, which every
# worker taking a share of the tests would otherwise repeat, Spark beside Spark on two cores.
pytestmark = pytest.mark.xdist_group("spark-inputs")


def write_parquet_parts(folder: Path) -> None:
    """make_rows' customers as two Parquet parts, typed as a database export types them: ages and
    tenures as integers, charges as floats (a NaN among them), TotalCharges as text, a blank gender."""
    import pandas as pd

    frame = pd.DataFrame([row.split(",") for row in make_rows(240, seed=4)], columns=HEADER.split(","))
    for column in ("Age", "Tenure"):
        frame[column] = frame[column].astype("int64")
    frame["MonthlyCharges"] = frame["MonthlyCharges"].astype("float64")
    frame.loc[5, "MonthlyCharges"] = float("nan")
    frame.loc[7, "Gender"] = "  "
    folder.mkdir(parents=True)
    frame.iloc[:130].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[130:].to_parquet(folder / "part-1.parquet", index=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, twin: Path, spark_python: Path) -> dict[str, dict]:
    """Each case through both engines: the reason file (if any), stderr and what was written."""
    folder = tmp_path_factory.mktemp("inputs")
    py_files = shared_code_zip(folder)
    roots = {case: folder / case.replace(" ", "-") for case in [*CASES, "parquet parts"]}
    for case, lines in CASES.items():
        write_csv(roots[case] / "in" / "customers.csv", lines)
    write_parquet_parts(roots["parquet parts"] / "in")
    sklearn_runs = {case: run_script("preprocessing.py", "--input-dir", root / "in", "--schema",
                                     CONFIG / "schema.json", "--output-dir", root / "sklearn" / "out",
                                     env={"SAGEMAKER_BASE_DIR": str(root / "sklearn")})
                    for case, root in roots.items()}
    steps: list[tuple[str, list[str | Path]]] = [
        ("preprocess_spark.py", ["--input", root / "in", "--schema", CONFIG / "schema.json",
                                 "--output", (root / "data").as_uri(), "--output-dir", root / "spark" / "out"])
        for root in roots.values()]
    bases: list[Path | None] = [root / "spark" for root in roots.values()]
    # the other steps refuse what they cannot use too: a split that is not there, a scikit-learn model
    parquet = roots["parquet parts"] / "sklearn" / "out"
    trained = run_script("training.py", "--train", parquet / "train", "--validation", parquet / "validation",
                         "--preprocessor", parquet / "preprocessor", "--model-dir", folder / "sklearn-model")
    assert trained.returncode == 0, trained.stderr
    refusals = {
        "training": ("train_spark.py", ["--train", (folder / "nowhere").as_uri(),
                                        "--validation", (folder / "nowhere").as_uri(),
                                        "--preprocessor", parquet / "preprocessor"]),
        "evaluation": ("evaluate_spark.py", ["--model", folder / "sklearn-model",
                                             "--holdout", (roots["parquet parts"] / "data" / "holdout").as_uri()]),
    }
    # a baseline profile that is not JSON, and a baseline folder without one: refused by both evaluations
    for case, content in BAD_BASELINES.items():
        baseline = folder / f"baseline-{case}"
        baseline.mkdir()
        if content is not None:
            (baseline / "statistics.json").write_text(content)
        sklearn_base = folder / f"refused-{case}-sklearn"
        sklearn_refusal = run_script("evaluation.py", "--model", folder / "sklearn-model",
                                     "--holdout", parquet / "holdout", "--baseline", baseline,
                                     "--output-dir", sklearn_base / "out", "--no-details",
                                     env={"SAGEMAKER_BASE_DIR": str(sklearn_base)})
        assert sklearn_refusal.returncode == 1, sklearn_refusal.stderr
        refusals[case] = ("evaluate_spark.py", ["--model", folder / "sklearn-model", "--baseline", baseline,
                                                "--holdout", (roots["parquet parts"] / "data" / "holdout").as_uri()])
    for step, (script, arguments) in refusals.items():
        steps.append((script, [*arguments, "--output-dir", folder / f"refused-{step}" / "out"]))
        bases.append(folder / f"refused-{step}")
    spark = run_spark_steps(spark_python, py_files, steps, base_dirs=bases, keep_going=True)
    codes = [int(line.rsplit(" ", 1)[1]) for line in spark.stdout.splitlines() if line.startswith("step ")]
    assert len(codes) == len(roots) + len(refusals), spark.stderr[-3000:]
    found: dict[str, dict] = {}
    for step, code in zip(refusals, codes[len(roots):], strict=True):
        out = folder / f"refused-{step}" / "out"
        found[f"refused {step}"] = {"code": code, "reason": (folder / f"refused-{step}" / "output" / "message")
                                    .read_text(), "written": sorted(out.rglob("*")) if out.exists() else []}
        if step in BAD_BASELINES:
            found[f"refused {step}"]["sklearn reason"] = (folder / f"refused-{step}-sklearn" / "output" /
                                                          "message").read_text()
    for (case, root), code in zip(roots.items(), codes[:len(roots)], strict=True):
        found[case] = {"root": root}
        for engine, returncode, stderr in (("sklearn", sklearn_runs[case].returncode, sklearn_runs[case].stderr),
                                           ("spark", code, spark.stderr)):
            reason = root / engine / "output" / "message"
            found[case][engine] = {"code": returncode, "stderr": stderr,
                                   "reason": reason.read_text() if reason.is_file() else None,
                                   "written": sorted(str(path.relative_to(root / engine / "out"))
                                                     for path in (root / engine / "out").rglob("*"))}
        found[case]["data_written"] = (root / "data").exists()
    return found


@pytest.fixture(scope="module")
def rejected(runs: dict[str, dict]) -> dict[str, dict]:
    return {case: runs[case] for case in CASES}


def test_parquet_parts_are_read_as_the_other_step_reads_them(runs: dict[str, dict]) -> None:
    run = runs["parquet parts"]
    assert run["spark"]["code"] == run["sklearn"]["code"] == 0, run["spark"]["stderr"][-3000:]
    root = run["root"]
    quality = {engine: json.loads((root / engine / "out" / "quality" / "data_quality.json").read_text())
               for engine in ("sklearn", "spark")}
    assert quality["spark"] == quality["sklearn"]
    assert quality["spark"]["files"] == ["part-0.parquet", "part-1.parquet"]
    # the NaN is a missing number, the blank text a missing category, in both
    assert (quality["spark"]["missing_values"]["MonthlyCharges"], quality["spark"]["missing_values"]["Gender"]) == \
        (1, 1)
    sklearn = pq.read_table(str(root / "sklearn" / "out" / "holdout" / "holdout.parquet"))
    spark = pq.read_table(str(root / "data" / "holdout"))
    assert spark.column_names == sklearn.column_names
    assert sorted(spark.to_pylist(), key=repr) == sorted(sklearn.to_pylist(), key=repr)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_the_same_reason_and_nothing_is_written(rejected: dict, case: str) -> None:
    sklearn, spark = rejected[case]["sklearn"], rejected[case]["spark"]
    assert sklearn["reason"].startswith("preprocessing rejected its input: ")
    assert spark["reason"] == sklearn["reason"]
    assert spark["code"] == sklearn["code"] == 1
    assert "Traceback" not in spark["stderr"]
    assert spark["written"] == sklearn["written"] == []
    assert not rejected[case]["data_written"]


def test_the_reasons_name_what_is_wrong(rejected: dict) -> None:
    assert "missing column 'Tenure' named by the schema (the file has 'tenure')" in \
        rejected["missing column"]["spark"]["reason"]
    assert "the file has a header but no data rows" in rejected["header only"]["spark"]["reason"]
    assert "a quoted field is never closed" in rejected["unclosed quote"]["spark"]["reason"]


def test_training_and_evaluation_refuse_what_they_cannot_use_in_the_contracts_form(runs: dict[str, dict]) -> None:
    training, evaluation = runs["refused training"], runs["refused evaluation"]
    assert training["code"] == evaluation["code"] == 1
    assert training["reason"].startswith("training rejected its input: ")
    assert "the split cannot be read" in training["reason"]
    assert evaluation["reason"].startswith("evaluation rejected its input: ")
    assert "the model is a scikit-learn model (model.joblib)" in evaluation["reason"]
    assert training["written"] == evaluation["written"] == []


@pytest.mark.parametrize("case", list(BAD_BASELINES))
def test_a_bad_baseline_profile_gets_evaluation_pys_reason_and_nothing_is_written(runs: dict[str, dict],
                                                                                   case: str) -> None:
    refused = runs[f"refused {case}"]
    assert refused["code"] == 1
    assert refused["reason"] == refused["sklearn reason"]
    assert refused["reason"].startswith("evaluation rejected its input: ")
    expected = {"baseline not json": "the baseline profile is not valid JSON",
                "baseline missing": "expected exactly one statistics.json"}[case]
    assert expected in refused["reason"]
    assert refused["written"] == []
