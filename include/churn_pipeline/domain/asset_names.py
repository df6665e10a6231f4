"""The names of the Airflow assets (and the asset alias) that tie the DAGs together, here so that
the tasks that emit their events and the DAG files that schedule on them use the same words.

``churn_model_version``: ``register_model`` registered a version; its event's extra is the review's
evidence (``tasks.review.registration_evidence``), and it starts ``customer_churn_review``.
``churn_champion``: a version was approved; it schedules ``customer_churn_scoring``.
``churn_champion_approvals``: the alias through which a decision task emits ``churn_champion`` only
when the decision is an approval, so that a rejection schedules nothing (an outlet asset would get an
event on every success of its task, whatever was decided).
"""

MODEL_VERSION_ASSET = "churn_model_version"
CHAMPION_ASSET = "churn_champion"
CHAMPION_APPROVALS_ALIAS = "churn_champion_approvals"
