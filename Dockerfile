# Airflow 3 image for docker-compose.yaml: the official image plus this project's pinned dependencies.
# The Airflow version must equal the apache-airflow pin in requirements.txt (a test checks it).
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /requirements.txt
# Installing apache-airflow at the image's own version stops pip from moving Airflow.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /requirements.txt
