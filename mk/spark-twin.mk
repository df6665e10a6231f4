# The Spark twin (.venv-spark): the Python environment of SageMaker's Spark processing image, where the
# local backend runs the jobs of that image, with the smspark-submit stand-in in its bin; and the Java 17
# its Spark runs on (Debian's openjdk-17-jre-headless; the image has Amazon Corretto 17).
SPARK_TWIN := .venv-spark
JAVA_PACKAGE := openjdk-17-jre-headless

# Like the image twin: without a Python 3.12 this says so in one line and succeeds (the Spark jobs then
# fail, saying the twin is missing). pyspark 3.5.6 is an sdist only (317 MB): building it takes a minute.
$(SPARK_TWIN)/.installed: requirements-spark.txt | $(VENV)/.installed
	@python312="$$($(BIN)/python -m churn_pipeline.local.image_twin find-python $(CONTAINER_PYTHON))" || \
		{ echo "$$python312 (nor the Spark twin)"; exit 0; }; \
	echo "building the Spark twin $(SPARK_TWIN) with $$python312 (pyspark builds from its sdist, about a minute)"; \
	rm -rf $(SPARK_TWIN) && \
	$(BIN)/uv venv --quiet --python "$$python312" $(SPARK_TWIN) && \
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(SPARK_TWIN)/bin/python --no-deps \
		-r requirements-spark.txt && \
	$(BIN)/python -m churn_pipeline.local.spark_twin install-submit > /dev/null && \
	touch $@

# Java 17 from Debian when no java is found (JAVA_HOME, or java on the PATH), as root; otherwise one
# line saying what is missing, and success: the Spark tests then skip (fail where CI requires the twin).
.PHONY: java
java:  ## Install Java 17 for the Spark twin (Debian's openjdk-17-jre-headless) as root, or say it is missing
	@if { [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ]; } || command -v java > /dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
		echo "installing $(JAVA_PACKAGE) (Java 17 for the Spark twin) ..."; export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(JAVA_PACKAGE) > /dev/null; \
	else \
		echo "no Java: the Spark twin needs Java 17; install it as root (apt-get install --no-install-recommends $(JAVA_PACKAGE))"; \
	fi

spark-twin: $(SPARK_TWIN)/.installed java  ## Build the Spark twin .venv-spark (the Spark image's Python, the smspark-submit stand-in) and install Java 17
.PHONY: spark-twin
