"""``find_champion``: the approved model the new one must beat, and the profile drift is measured
against, looked up once per run before evaluation.

The champion is the newest approved version (SageMaker: latest ``Approved`` package of the group;
locally the MLflow alias ``champion``). The drift baseline is the champion's training-data profile or,
until anything is approved, the newest registered version's. Neither exists on a first run, which is
a normal state, not an error. A champion whose model artefact is gone is passed on with the reason,
so that the evaluation records it as not comparable instead of failing the job. So is one whose
artefact lies outside the configured bucket and prefix: the evaluation job unpickles the champion's
model, and a registry entry pointing anywhere else (edited, or of another deployment) must never
make it load a file this pipeline did not write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from churn_pipeline.domain.settings import Settings, SettingsError, load_settings
from churn_pipeline.tasks._run import log, says_why_it_failed

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.engine import Engine
    from churn_pipeline.domain.payloads import ChampionLookup, ModelVersionRef
    from churn_pipeline.services.objectstore import ObjectStore


def _outside(uri: str, base_uri: str) -> bool:
    """Whether ``uri`` lies outside ``base_uri`` (``s3://<bucket>/<prefix>``), by bucket and whole key parts."""
    from churn_pipeline.domain.s3_uris import ObjectStoreError, parse_s3_uri

    try:
        bucket, key = parse_s3_uri(uri)
    except ObjectStoreError:
        return True
    base_bucket, base_key = parse_s3_uri(base_uri)
    return bucket != base_bucket or not key.startswith(f"{base_key.rstrip('/')}/")


def _missing(store: ObjectStore, uri: str | None, what: str, base_uri: str) -> str | None:
    """Why ``uri`` cannot be used, or None when its object is there, under this pipeline's prefix."""
    from churn_pipeline.domain.text import shown
    from churn_pipeline.services.objectstore import ObjectStoreError

    if not uri:
        return f"it has no {what}"
    if _outside(uri, base_uri):
        return f"its {what} {shown(uri)} lies outside this pipeline's bucket and prefix ({base_uri}); it is not read"
    try:
        return None if store.exists(uri) else f"its {what} is gone from {uri}"
    except ObjectStoreError as error:
        return f"its {what} cannot be read: {error}"


def champion_engine_and_image(settings: Settings, champion: ModelVersionRef) -> tuple[Engine, str]:
    """How the champion is scored, and in which image: the scikit-learn image, or the Spark processing
    image (``SettingsError``/``ValueError`` name what is wrong)."""
    from churn_pipeline.domain.engine import Engine
    from churn_pipeline.services import backend

    engine = Engine(champion.engine)
    return engine, settings.spark_image() if engine is Engine.SPARK else backend.container_image(settings)


def look_up(settings: Settings, registry: Any, store: ObjectStore, run_engine: str = "sklearn") -> ChampionLookup:
    """The champion and the baseline; for a champion of another engine than the run's (``run_engine``),
    also the image it is scored in, or, where that cannot be resolved, why it cannot be compared."""
    from churn_pipeline.domain.payloads import ChampionLookup

    group = settings.model_package_group
    champion: ModelVersionRef | None = registry.champion(group)
    baseline: ModelVersionRef | None = champion or registry.newest(group)
    champion_problem = _missing(store, champion.model_uri, "model artefact", settings.base_uri) if champion else None
    image_uri = None
    if champion is not None and champion_problem is None and champion.engine != run_engine:
        try:
            image_uri = champion_engine_and_image(settings, champion)[1]
        except (SettingsError, ValueError, ImportError) as error:
            champion_problem = f"it is a {champion.engine} model, and its image cannot be resolved: {error}"
    return ChampionLookup(
        champion=champion,
        baseline=baseline,
        champion_problem=champion_problem,
        baseline_problem=(_missing(store, baseline.statistics_uri, "data profile", settings.base_uri) if baseline
                          else None),
        champion_image_uri=image_uri,
    )


@says_why_it_failed
def look_up_champion(staged: Any = None, **_: Any) -> dict[str, Any]:
    """``staged``: stage_inputs' result, whose engine decides whether the champion is of the other one."""
    from churn_pipeline.domain.payloads import StagedInputs
    from churn_pipeline.services import backend

    settings = load_settings()
    run_engine = StagedInputs.from_xcom(staged).engine if staged is not None else "sklearn"
    lookup = look_up(settings, backend.model_registry(settings), backend.object_store(settings), run_engine)
    if lookup.champion:
        log.info("champion: version %s (%s)%s", lookup.champion.version, lookup.champion.identifier,
                 f"; it cannot be used: {lookup.champion_problem}" if lookup.champion_problem else "")
        if lookup.champion_image_uri:
            log.info("the champion is a %s model, this run's is %s: score_champion scores it in %s",
                     lookup.champion.engine, run_engine, lookup.champion_image_uri)
    else:
        log.info("no approved champion in %s yet: this run's model is compared with none",
                 settings.model_package_group)
    if lookup.baseline:
        log.info("drift baseline: version %s's training data%s", lookup.baseline.version,
                 f" (unusable: {lookup.baseline_problem})" if lookup.baseline_problem else "")
    else:
        log.info("no registered version yet: drift has no baseline on this run")
    return lookup.to_xcom()
