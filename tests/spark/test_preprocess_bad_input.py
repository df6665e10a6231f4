"""Bad input on the Spark path: the same reason as preprocessing.py gives for the same input (the
contract's form, where SageMaker reads it), a failing exit code, no traceback, and nothing written,
neither the driver's files nor the data sets."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="module")
def rejected(tmp_path_factory: pytest.TempPathFactory, twin: Path, spark_python: Path) -> dict[str, dict]:
    """Each case through both engines: the reason file, stderr and what was written. The Spark runs
    share one spark-submit, each step with its own SageMaker folder."""
    folder = tmp_path_factory.mktemp("rejected")
    py_files = shared_code_zip(folder)
    roots = {case: folder / case.replace(" ", "-") for case in CASES}
    sklearn_runs = {}
    for case, lines in CASES.items():
        root = roots[case]
        write_csv(root / "in" / "customers.csv", lines)
        sklearn_runs[case] = run_script("preprocessing.py", "--input-dir", root / "in", "--schema",
                                        CONFIG / "schema.json", "--output-dir", root / "sklearn" / "out",
                                        env={"SAGEMAKER_BASE_DIR": str(root / "sklearn")})
    steps: list[tuple[str, list[str | Path]]] = [
        ("preprocess_spark.py", ["--input", root / "in", "--schema", CONFIG / "schema.json",
                                 "--output", (root / "data").as_uri(), "--output-dir", root / "spark" / "out"])
        for root in roots.values()]
    spark = run_spark_steps(spark_python, py_files, steps, base_dirs=[root / "spark" for root in roots.values()],
                            keep_going=True)
    codes = [int(line.rsplit(" ", 1)[1]) for line in spark.stdout.splitlines() if line.startswith("step ")]
    assert len(codes) == len(CASES), spark.stderr[-3000:]
    found: dict[str, dict] = {}
    for (case, root), code in zip(roots.items(), codes, strict=True):
        found[case] = {}
        for engine, returncode, stderr in (("sklearn", sklearn_runs[case].returncode, sklearn_runs[case].stderr),
                                           ("spark", code, spark.stderr)):
            found[case][engine] = {"code": returncode, "stderr": stderr,
                                   "reason": (root / engine / "output" / "message").read_text(),
                                   "written": sorted(str(path.relative_to(root / engine / "out"))
                                                     for path in (root / engine / "out").rglob("*"))}
        found[case]["data_written"] = (root / "data").exists()
    return found


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
