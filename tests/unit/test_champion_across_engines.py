"""A champion of the other engine: the Spark image cannot load a scikit-learn model, nor the
scikit-learn image a Spark one, so ``score_champion`` scores this run's held-out customers in the
champion's own image, and the evaluation values the champion from those scores. It has nothing to do
without a champion, with one that cannot be used, or with one of the run's own engine."""

from __future__ import annotations

from dataclasses import replace

import botocore.session
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.payloads import ChampionLookup, JobResult, ModelVersionRef, StagedInputs
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.steps import EVALUATE, SCORE_CHAMPION, WiringError, check_inputs
from churn_pipeline.requests.steps import read_inputs, request_for_step, skip_reason

KEY = "20261201T020000Z"
RUN = f"s3://customer-churn-pipeline/churn-pipeline/runs/{KEY}"
SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
ENVIRONMENT = {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/churn-sagemaker",
               "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:x"}
MODEL = botocore.session.get_session().get_service_model("sagemaker")
SKLEARN_CHAMPION = ModelVersionRef(version=3, identifier="arn:aws:sagemaker:us-east-1:1:model-package/churn/3",
                                   approval_status="Approved", engine="sklearn",
                                   model_uri="s3://customer-churn-pipeline/churn-pipeline/runs/k/model/j/output/"
                                             "model.tar.gz")
SPARK_CHAMPION = replace(SKLEARN_CHAMPION, engine="spark",
                         model_uri="s3://customer-churn-pipeline/churn-pipeline/runs/k/model/j/output/model.tar.gz")
SCORES = JobResult(job_name=f"churn-score-champion-{KEY}", status="Completed", attempt=1, reused=False,
                   outputs={"champion-scores": f"{RUN}/champion-scores"})
PREPROCESSED = {
    "sklearn": JobResult(job_name="p", status="Completed", attempt=1, reused=False,
                         outputs={name: f"{RUN}/preprocessing/{name}" for name in
                                  ("train", "validation", "test", "preprocessor", "quality", "holdout", "profile")}),
    "spark": JobResult(job_name="p", status="Completed", attempt=1, reused=False,
                       outputs={name: f"{RUN}/preprocessing/{name}"
                                for name in ("preprocessor", "quality", "profile")}),
}
TRAINED = {
    "sklearn": JobResult(job_name="t", status="Completed", attempt=1, reused=False,
                         outputs={"model": f"{RUN}/model/t/output/model.tar.gz"}),
    "spark": JobResult(job_name="t", status="Completed", attempt=1, reused=False,
                       outputs={"model": f"{RUN}/model/t/output"}),
}


def staged(engine: str) -> StagedInputs:
    return StagedInputs(run_key=KEY, run_uri=RUN, input_uri="s3://raw/customers/", schema_uri=f"{RUN}/schema/s.json",
                        code_uri=f"{RUN}/code", image_uri=SPARK_IMAGE if engine == "spark" else SKLEARN_IMAGE,
                        engine=engine)


def lookup(champion: ModelVersionRef | None, **fields: object) -> ChampionLookup:
    image = {"sklearn": SKLEARN_IMAGE, "spark": SPARK_IMAGE}[champion.engine] if champion else None
    return ChampionLookup(champion=champion, champion_image_uri=image, **fields)  # type: ignore[arg-type]


def validate(request: dict) -> None:
    report = ParamValidator().validate(request, MODEL.operation_model("CreateProcessingJob").input_shape)
    assert not report.has_errors(), report.generate_report()


def inputs_of(request: dict) -> dict[str, str]:
    return {item["InputName"]: item["S3Input"]["S3Uri"] for item in request["ProcessingInputs"]}


def outputs_of(request: dict) -> dict[str, str]:
    return {item["OutputName"]: item["S3Output"]["S3Uri"] for item in request["ProcessingOutputConfig"]["Outputs"]}


def arguments_of(request: dict) -> list[str]:
    return request["AppSpecification"].get("ContainerArguments", [])


@pytest.fixture()
def settings():
    return load_settings(ENVIRONMENT)


@pytest.mark.parametrize(("run_engine", "found", "params", "reason"), [
    ("sklearn", lookup(None), {}, "there is no approved champion to compare with"),
    ("spark", lookup(SKLEARN_CHAMPION), {"compare_with_champion": "off"},
     "the comparison with the champion is off (compare_with_champion=off)"),
    ("spark", lookup(SKLEARN_CHAMPION, champion_problem="its model artefact is gone from s3://x"), {},
     "the champion cannot be used: its model artefact is gone from s3://x"),
    ("sklearn", lookup(SKLEARN_CHAMPION), {}, "the champion is a scikit-learn model, as this run's is: evaluate "
                                              "scores it"),
    ("spark", lookup(SPARK_CHAMPION), {}, "the champion is a spark-mllib model, as this run's is: evaluate scores it"),
])
def test_there_is_nothing_to_score_without_a_usable_champion_of_the_other_engine(
        run_engine: str, found: ChampionLookup, params: dict, reason: str) -> None:
    inputs = {"preprocessing": PREPROCESSED[run_engine], "champion": found}
    assert skip_reason(SCORE_CHAMPION, staged(run_engine), inputs, params) == reason


def test_a_champion_of_the_other_engine_is_scored_and_other_steps_are_never_skipped() -> None:
    for run_engine, champion in (("sklearn", SPARK_CHAMPION), ("spark", SKLEARN_CHAMPION)):
        inputs = {"preprocessing": PREPROCESSED[run_engine], "champion": lookup(champion)}
        assert skip_reason(SCORE_CHAMPION, staged(run_engine), inputs, {}) is None
    assert skip_reason(EVALUATE, staged("sklearn"), {}, {}) is None


def test_a_spark_champion_scores_a_scikit_learn_runs_holdout_on_the_spark_image(settings) -> None:
    inputs = {"preprocessing": PREPROCESSED["sklearn"], "champion": lookup(SPARK_CHAMPION)}
    request = request_for_step(SCORE_CHAMPION, settings, f"churn-score-champion-{KEY}", staged("sklearn"), inputs, {})

    assert request["AppSpecification"]["ImageUri"] == SPARK_IMAGE
    assert request["AppSpecification"]["ContainerEntrypoint"][0] == "smspark-submit"
    assert request["AppSpecification"]["ContainerEntrypoint"][-1] == "/opt/ml/processing/input/code/evaluate_spark.py"
    assert inputs_of(request)["model"] == SPARK_CHAMPION.model_uri
    arguments = arguments_of(request)
    assert arguments[arguments.index("--holdout") + 1] == f"{RUN}/preprocessing/holdout"  # preprocessing.py's output
    assert arguments[arguments.index("--output-dir") + 1] == "/opt/ml/processing/output/champion-scores"
    assert "--write-scores" in arguments and "--champion" not in arguments
    assert outputs_of(request)["champion-scores"] == f"{RUN}/champion-scores"
    assert inputs_of(request)["conf"] == f"{RUN}/code/spark-conf/evaluate/configuration.json"  # evaluate's cluster
    validate(request)


def test_a_scikit_learn_champion_scores_a_spark_runs_holdout_on_its_own_image(settings) -> None:
    inputs = {"preprocessing": PREPROCESSED["spark"], "champion": lookup(SKLEARN_CHAMPION)}
    request = request_for_step(SCORE_CHAMPION, settings, f"churn-score-champion-{KEY}", staged("spark"), inputs, {})

    assert request["AppSpecification"]["ImageUri"] == SKLEARN_IMAGE
    assert request["AppSpecification"]["ContainerEntrypoint"] == ["python3",
                                                                  "/opt/ml/processing/input/code/evaluation.py"]
    assert inputs_of(request) == {"code": f"{RUN}/code", "model": SKLEARN_CHAMPION.model_uri,
                                  "holdout": f"{RUN}/preprocessing/holdout"}  # the part files Spark wrote
    assert arguments_of(request) == ["--write-scores", "--output-dir", "/opt/ml/processing/output/champion-scores"]
    assert outputs_of(request) == {"champion-scores": f"{RUN}/champion-scores"}
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == settings.resources_for(
        "evaluate").instance_type
    validate(request)


@pytest.mark.parametrize("run_engine", ["sklearn", "spark"])
def test_the_evaluation_values_a_champion_of_the_other_engine_from_its_scores(settings, run_engine: str) -> None:
    champion = SPARK_CHAMPION if run_engine == "sklearn" else SKLEARN_CHAMPION
    inputs = {"preprocessing": PREPROCESSED[run_engine], "model": TRAINED[run_engine], "champion": lookup(champion),
              "champion_scores": SCORES}
    request = request_for_step(EVALUATE, settings, "e", staged(run_engine), inputs, {})

    assert inputs_of(request)["champion-scores"] == f"{RUN}/champion-scores" and "champion" not in inputs_of(request)
    arguments = arguments_of(request)
    assert arguments[arguments.index("--champion-scores") + 1] == "/opt/ml/processing/input/champion-scores"
    assert arguments[arguments.index("--champion-identifier") + 1] == champion.identifier
    validate(request)


@pytest.mark.parametrize("run_engine", ["sklearn", "spark"])
def test_without_its_scores_a_champion_of_the_other_engine_is_not_comparable_and_says_why(settings,
                                                                                         run_engine: str) -> None:
    champion = SPARK_CHAMPION if run_engine == "sklearn" else SKLEARN_CHAMPION
    inputs = {"preprocessing": PREPROCESSED[run_engine], "model": TRAINED[run_engine], "champion": lookup(champion)}
    request = request_for_step(EVALUATE, settings, "e", staged(run_engine), inputs, {})

    arguments = arguments_of(request)
    assert "champion" not in inputs_of(request) and "--champion-scores" not in arguments
    assert arguments[arguments.index("--champion-unavailable") + 1].endswith(
        "model, which this run's image cannot load, and score_champion did not score it")


def test_a_champion_of_the_runs_own_engine_is_still_loaded_by_the_evaluation(settings) -> None:
    inputs = {"preprocessing": PREPROCESSED["sklearn"], "model": TRAINED["sklearn"],
              "champion": lookup(SKLEARN_CHAMPION), "champion_scores": SCORES}  # stray scores are not read
    request = request_for_step(EVALUATE, settings, "e", staged("sklearn"), inputs, {})
    assert inputs_of(request)["champion"] == SKLEARN_CHAMPION.model_uri
    assert "champion-scores" not in inputs_of(request)


def test_a_skipped_score_champion_is_left_out_and_a_missing_role_is_still_refused() -> None:
    found = lookup(None).to_xcom()
    _, inputs = read_inputs(EVALUATE, staged("sklearn").to_xcom(),
                            {"preprocessing": PREPROCESSED["sklearn"].to_xcom(), "model": TRAINED["sklearn"].to_xcom(),
                             "champion": found, "champion_scores": None})
    assert set(inputs) == {"preprocessing", "model", "champion"}
    with pytest.raises(WiringError, match="the evaluate step's task lacks champion_scores"):
        check_inputs(EVALUATE, ["preprocessing", "model", "champion"])
