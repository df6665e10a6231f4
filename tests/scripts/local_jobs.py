"""What the local runner's tests share: a run's store with the code shipped as the DAG ships it, and
the requests of the jobs they run (the very dicts SageMaker would get)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import SCRIPTS_DIR, Settings, load_settings
from churn_pipeline.local.runner import LocalJobRunner
from churn_pipeline.requests.processing import preprocess_request, processing_request
from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
from churn_pipeline.services.archives import deterministic_tar
from churn_pipeline.services.objectstore import LocalObjectStore, upload_tree
from tests.conftest import CONFIG, HEADER, make_rows, write_csv

KEY = "20261126T020000Z"
IMAGE = "local/sklearn"
SMALL_FOREST = {"n-estimators": 5, "max-depth": 3, "min-samples-split": 4, "random-state": 1}


@dataclass
class LocalWorld:
    settings: Settings
    store: LocalObjectStore
    layout: RunLayout
    runner: LocalJobRunner
    lines: list[str] = field(default_factory=list)  # what the runner logged, as the task log gets it


def make_world(folder: Path) -> LocalWorld:
    """A local root with this run's code (loose files and sourcedir.tar.gz) and schema staged."""
    settings = load_settings({"CHURN_LOCAL_ROOT": str(folder / "root")})
    store = LocalObjectStore(settings.local_root)
    layout = RunLayout(settings.base_uri, KEY)
    upload_tree(store, SCRIPTS_DIR, layout.code_uri)
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS_DIR))
    store.upload_file(CONFIG / "schema.json", layout.schema_uri)
    lines: list[str] = []
    return LocalWorld(settings, store, layout, LocalJobRunner(store, log=lines.append), lines)


def preprocess(world: LocalWorld, input_uri: str, runner: LocalJobRunner | None = None) -> dict:
    request = preprocess_request(world.settings, world.layout, job_name="churn-preprocess-" + KEY, image_uri=IMAGE,
                                 input_uri=input_uri, schema_uri=world.layout.schema_uri)
    return (runner or world.runner).run_processing(request)


def preprocessed_request(world: LocalWorld, name: str, hyperparameters: dict,
                         runner: LocalJobRunner | None = None) -> dict:
    """Preprocess 200 rows, then the training request on their splits, as the DAG would send it."""
    write_csv(world.store.root / "in" / "data.csv", [HEADER] + make_rows(200))
    upload_tree(world.store, world.store.root / "in", world.layout.input_uri)
    assert preprocess(world, world.layout.input_uri, runner)["ProcessingJobStatus"] == "Completed"
    return train_request(world.settings, world.layout, job_name=name, image_uri=IMAGE,
                         channels={c: world.layout.preprocessing_uri(c) for c in TRAINING_CHANNELS},
                         hyperparameters=hyperparameters)


def run_log(world: LocalWorld, name: str) -> str:
    return (world.store.root / "jobs" / name / "output.log").read_text()


def ship_code(world: LocalWorld, folder: Path, files: dict[str, str]) -> None:
    """Replace the run's code (loose files and sourcedir.tar.gz) with ``files``."""
    for file_name, text in files.items():
        (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_text(text)
    upload_tree(world.store, folder, world.layout.code_uri)
    world.store.write_bytes(world.layout.sourcedir_uri, deterministic_tar(folder))


def bare_training_request(world: LocalWorld, name: str, max_runtime: int = 600) -> dict:
    """A training request whose channels hold a placeholder file: for scripts that read no data."""
    for channel in TRAINING_CHANNELS:
        world.store.write_bytes(f"{world.layout.run_uri}/bare/{channel}/part.csv", b"x\n")
    request = train_request(world.settings, world.layout, job_name=name, image_uri=IMAGE,
                            channels={c: f"{world.layout.run_uri}/bare/{c}" for c in TRAINING_CHANNELS})
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = max_runtime
    return request


def processing_request_running(world: LocalWorld, code: str, max_runtime: int) -> dict:
    """A processing request dict whose container runs ``python3 -c code``."""
    request = processing_request(
        world.settings, world.layout, step="preprocess", job_name=f"churn-preprocess-{KEY}", image_uri=IMAGE,
        inputs={}, outputs={"result": f"{world.layout.run_uri}/result"})
    request["AppSpecification"]["ContainerEntrypoint"] = ["python3", "-c", code]
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = max_runtime
    return request


def still_running(marker: str) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
