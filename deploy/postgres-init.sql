-- docker-compose.yml's PostgreSQL: one database per engine beside Dagster's (created by POSTGRES_DB).
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
