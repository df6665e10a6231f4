"""training.py: the mission's RandomForest, overridable hyperparameters, scrapeable metrics, and a
model directory that scores raw records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import joblib
import pytest

from churn_common import defaults
from tests.conftest import SCRIPTS, run_script

LARGE_SAMPLE_ROWS = 400_000  # a training split of 280,000 rows: above the default rows per tree
AUC_TOLERANCE = 0.005  # well inside the spread of ROC AUC between seeds of the same forest here


def train(out: Path, model: Path, *extra: str, env: dict[str, str] | None = None):
    return run_script("training.py", "--train", out / "train", "--validation", out / "validation",
                      "--preprocessor", out / "preprocessor", "--model-dir", model, *extra, env=env)


def test_default_hyperparameters_are_the_missions(sample_outputs: dict[str, Path]) -> None:
    model = joblib.load(sample_outputs["model"] / "model.joblib")
    forest = model.named_steps["classifier"]
    assert (forest.n_estimators, forest.max_depth, forest.min_samples_split, forest.random_state) == (100, 10, 4, 42)
    recorded = json.loads((sample_outputs["model"] / "training_metrics.json").read_text())
    assert recorded["hyperparameters"]["n_estimators"] == 100
    # the sample is far below the default rows per tree: every tree draws the whole split, as the mission's
    assert forest.max_samples is None and recorded["rows"]["per_tree"] == recorded["rows"]["train"]


def test_the_split_is_read_as_float32_with_the_values_the_float64_reader_gives(sample_outputs: dict[str, Path]) -> None:
    import numpy as np

    from churn_common import matrices, tables

    features, labels = matrices.read_float32_split(sample_outputs["out"] / "train")
    wide, wide_labels = tables.read_matrix_csv(sample_outputs["out"] / "train")
    assert features.dtype == np.float32 and features.flags.c_contiguous
    assert np.array_equal(features, wide.astype("float32")) and np.array_equal(labels, wide_labels)
    # column-major, for the fit: the same values in the trees' layout
    for_fitting, _ = matrices.read_float32_split(sample_outputs["out"] / "train", order="F")
    assert for_fitting.flags.f_contiguous and np.array_equal(for_fitting, features)


def test_scores_on_all_cores_equal_the_single_threaded_forests_to_the_last_bit() -> None:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from churn_common import matrices

    rng = np.random.default_rng(0)
    features = rng.normal(size=(3 * matrices.SCORING_BLOCK_ROWS + 5, 6)).astype("float32")
    labels = (features[:, 0] + rng.normal(size=len(features)) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=1, n_jobs=1).fit(features, labels)
    expected = forest.predict_proba(features)[:, 1]
    for _ in range(3):
        assert np.array_equal(matrices.forest_probabilities(forest, features, workers=4), expected)
    assert forest.n_jobs == 1, "the forest is left as it was found"


@pytest.mark.parametrize(("content", "says"), [
    ("label,a\n1,0.5\n0,abc\n", "the split holds values that are not numbers"),
    ("a,label\n1,0\n", "expected a 'label' column first"),
    ("label,a\n", "the split has a header but no data rows"),
    ("label,a\n1,\n", "1 empty cell(s) in column 'a'"),
])
def test_a_broken_split_is_refused_with_one_message(tmp_path: Path, content: str, says: str) -> None:
    from churn_common import container, matrices

    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(container.ContractError) as refused:
        matrices.read_float32_split(tmp_path)
    assert says in "; ".join(refused.value.violations)


def test_rows_per_tree_is_the_full_bootstrap_up_to_the_cap_and_the_cap_above_it() -> None:
    assert defaults.rows_per_tree(7_000, 200_000) == 7_000
    assert defaults.rows_per_tree(200_000, 200_000) == 200_000
    assert defaults.rows_per_tree(700_000, 200_000) == 200_000
    assert defaults.rows_per_tree(700_000, 0) == 700_000, "0 means every tree draws the whole split"


@pytest.fixture(scope="module")
def large_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Several hundred thousand generated customers, preprocessed once."""
    from churn_pipeline.tooling.sample_data import write_sample

    root = tmp_path_factory.mktemp("large")
    write_sample(root / "in" / "customers.csv", LARGE_SAMPLE_ROWS, seed=3)
    result = run_script("preprocessing.py", "--input-dir", root / "in", "--output-dir", root / "out")
    assert result.returncode == 0, result.stderr
    return root / "out"


def _validation_auc(stdout: str) -> float:
    match = re.search(r"validation:roc_auc=([0-9.]+);", stdout)
    assert match, stdout
    return float(match.group(1))


def test_the_default_rows_per_tree_scores_as_well_as_the_full_bootstrap(tmp_path: Path, large_sample: Path) -> None:
    capped = train(large_sample, tmp_path / "capped")
    full = train(large_sample, tmp_path / "full", "--max-samples", "0")
    assert capped.returncode == 0 and full.returncode == 0, capped.stderr + full.stderr
    recorded = json.loads((tmp_path / "capped" / "training_metrics.json").read_text())
    cap = defaults.HYPERPARAMETERS["max-samples"]
    assert recorded["rows"]["train"] > cap and recorded["rows"]["per_tree"] == cap
    assert f"{cap} row(s) drawn per tree" in capped.stdout
    assert abs(_validation_auc(capped.stdout) - _validation_auc(full.stdout)) <= AUC_TOLERANCE


def test_model_directory_is_ready_for_model_tar_gz(sample_outputs: dict[str, Path]) -> None:
    names = sorted(p.relative_to(sample_outputs["model"]).as_posix() for p in sample_outputs["model"].rglob("*"))
    shared = sorted(f"code/churn_common/{p.name}" for p in (SCRIPTS / "churn_common").iterdir() if p.is_file())
    assert names == sorted(["code", "code/churn_common", *shared, "code/inference.py", "decision.json",
                            "model.joblib", "schema.json", "training_metrics.json"])


def test_hyperparameters_can_be_overridden_as_sagemaker_passes_them(tmp_path: Path,
                                                                     sample_outputs: dict[str, Path]) -> None:
    result = train(sample_outputs["out"], tmp_path / "model", "--n-estimators", "7", "--max-depth", "3",
                   "--min-samples-split", "9")
    assert result.returncode == 0, result.stderr
    forest = joblib.load(tmp_path / "model" / "model.joblib").named_steps["classifier"]
    assert (forest.n_estimators, forest.max_depth, forest.min_samples_split) == (7, 3, 9)


def test_validation_metrics_are_logged_for_sagemaker_metric_definitions(tmp_path: Path,
                                                                         sample_outputs: dict[str, Path]) -> None:
    from churn_pipeline.domain.layout import RunLayout
    from churn_pipeline.domain.settings import load_settings
    from churn_pipeline.requests.training import train_request

    settings = load_settings({})
    request = train_request(settings, RunLayout(settings.base_uri, "20261126T020000Z"), job_name="j", image_uri="i",
                            channels={})
    result = train(sample_outputs["out"], tmp_path / "model", "--n-estimators", "5")
    definitions = request["AlgorithmSpecification"]["MetricDefinitions"]
    assert {d["Name"] for d in definitions} == {f"validation:{name}" for name in
                                                ("accuracy", "precision", "recall", "f1_score", "roc_auc")}
    for definition in definitions:  # what SageMaker would scrape from the job's log with the request's regexes
        match = re.search(definition["Regex"], result.stdout)
        assert match and 0.0 <= float(match.group(1)) <= 1.0, definition["Name"]


def test_channels_default_to_sm_variables(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    out = sample_outputs["out"]
    env = {"SM_CHANNEL_TRAIN": str(out / "train"), "SM_CHANNEL_VALIDATION": str(out / "validation"),
           "SM_CHANNEL_PREPROCESSOR": str(out / "preprocessor"), "SM_MODEL_DIR": str(tmp_path / "model"),
           "SAGEMAKER_BASE_DIR": str(tmp_path / "ml")}
    result = run_script("training.py", "--n-estimators", "3", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model" / "model.joblib").is_file()


def test_a_missing_channel_fails_clearly_writing_the_failure_file(tmp_path: Path) -> None:
    base = tmp_path / "ml"
    model = tmp_path / "model"
    model.mkdir()
    result = run_script("training.py", "--train", tmp_path / "nothing", "--validation", tmp_path / "nothing",
                        "--preprocessor", tmp_path / "nothing", "--model-dir", model,
                        env={"SAGEMAKER_BASE_DIR": str(base)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "expected exactly one *.csv" in result.stderr and "nothing" in result.stderr
    assert (base / "output" / "failure").read_text().startswith("training rejected its input")
    assert list(model.iterdir()) == []


def test_invalid_hyperparameter_is_rejected(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    result = train(sample_outputs["out"], tmp_path / "model", "--min-samples-split", "1")
    assert result.returncode == 1 and "min-samples-split must be at least 2" in result.stderr
    result = train(sample_outputs["out"], tmp_path / "model", "--max-samples", "-5")
    assert result.returncode == 1 and "max-samples must be at least 0, got -5" in result.stderr
    assert "Traceback" not in result.stderr


def _drop_last_feature_of_train(out: Path) -> None:
    split = out / "train" / "train.csv"
    split.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in split.read_text().splitlines()))


def _change_statistics(out: Path, change) -> None:
    statistics = out / "preprocessor" / "preprocessor.json"
    statistics.write_text(json.dumps(change(json.loads(statistics.read_text()))))


@pytest.mark.parametrize(("damage", "says"), [
    (lambda out: _change_statistics(out, lambda fitted: {**fitted, "features": fitted["features"][:-1]}),
     "the split's 22 feature(s) are not the 21 the preprocessor's statistics name"),
    (lambda out: _change_statistics(out, lambda fitted: {**fitted, "categorical": {
        name: {**values, "categories": values["categories"][:-1]} for name, values in fitted["categorical"].items()}}),
     "the preprocessor's features differ from the ones its statistics name"),
    (lambda out: _change_statistics(out, lambda fitted: {k: v for k, v in fitted.items() if k != "numeric"}),
     "the preprocessor's statistics lack numeric; was it written by preprocessing.py?"),
    (_drop_last_feature_of_train, "the split's 21 feature(s) are not the 22 the preprocessor's statistics name; "
     "were they written by the same preprocessing run?"),
])
def test_a_preprocessor_that_does_not_match_its_splits_is_refused_with_one_message(
        tmp_path: Path, sample_outputs: dict[str, Path], damage, says: str) -> None:
    """Training builds the packaged preprocessor from the statistics preprocessing wrote: statistics
    that do not describe the splits' features, or whose categories do not give the features they
    name, are refused, with nothing written."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_outputs["out"], out)
    damage(out)
    model = tmp_path / "model"
    model.mkdir()

    result = train(out, model)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("training rejected its input") and says in result.stderr, result.stderr
    assert list(model.iterdir()) == []
