"""Customer churn pipeline: the DAG-side package (settings, request builders, local backend, tasks)."""
