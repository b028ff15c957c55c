-- Run once by the postgres image on an empty data volume: the MLflow tracking server's own database,
-- owned by the same user as Airflow's metadata database.
CREATE DATABASE mlflow;
