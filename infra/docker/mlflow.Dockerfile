# MLflow's tracking server for infra/compose.yaml: the official image plus the PostgreSQL
# driver its backend store needs (the official image ships none), run unprivileged.
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.10 \
    && useradd --system --uid 10002 --no-create-home --shell /usr/sbin/nologin mlflow \
    && mkdir -p /mlartifacts \
    && chown mlflow /mlartifacts
USER 10002
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
