-- Runs once, when the PostgreSQL volume is first created (docker-entrypoint-initdb.d): the
-- databases of MLflow and of Signoff's ledger. Temporal's auto-setup creates its own two.
CREATE DATABASE mlflow;
CREATE DATABASE signoff;
