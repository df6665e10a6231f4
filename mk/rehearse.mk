# The production path rehearsed: the MWAA bundle, in a twin of MWAA's worker (its image's packages
# exactly, the bundle applied as MWAA applies it), driving SageMaker jobs that really run in the AWS
# emulation (moto's server, whose jobs run in the image twin). Its own target, not part of `make test`.
.PHONY: rehearse mwaa-bundle-offline

# MWAA_VERSION=3.3.1 rehearses one version; by default every version the project supports
rehearse: $(VENV)/.installed $(TWIN)/.installed  ## Rehearse the MWAA bundle in a twin of MWAA against an AWS emulation that runs the jobs [MWAA_VERSION=3.3.1]
	@$(BIN)/python -m churn_pipeline.tooling.rehearse $(if $(MWAA_VERSION),--version $(MWAA_VERSION))

mwaa-bundle-offline: $(VENV)/.installed  ## Build build/mwaa/ with the requirements as wheels in plugins.zip, for MWAA without internet [MWAA_VERSION=3.3.1]
	$(BIN)/python -m churn_pipeline.tooling.bundle build/mwaa --wheels $(if $(MWAA_VERSION),--airflow-version $(MWAA_VERSION))
