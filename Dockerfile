# syntax=docker/dockerfile:1
# The platform image: one image, every role, chosen by the first argument (trading_pipeline/container.py):
#   docker run --rm -v "$PWD/data:/data" IMAGE fetch --symbol BTCUSDT,ETHUSDT --interval 1h --from 2024-01-01 --fill_daily
#   docker run --rm -v "$PWD/data:/data" IMAGE cli backtest --strategy sma_cross --symbol BTCUSDT --interval 1h
#   … code-location | webserver | daemon | mlflow | bot --bot bot1   (docker-compose.yml runs them together)
# It runs as uid 10001 over a root-owned, read-only environment; numba and matplotlib cache under /tmp.
FROM python:3.11-slim-bookworm

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    DAGSTER_HOME=/app/dagster_home \
    TP_DATA_DIR=/data

RUN groupadd --system --gid 10001 tp \
    && useradd --system --uid 10001 --gid tp --home-dir /app --shell /usr/sbin/nologin tp \
    && mkdir -p /data /app/dagster_home \
    && chown tp:tp /data

WORKDIR /app

# Dependencies only: this layer is rebuilt when the lock file changes, not when the code does.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-install-project --no-dev

# Then the code, installed into the same environment (not editable), and the deployment files.
COPY README.md ./
COPY trading_pipeline ./trading_pipeline
COPY deploy ./deploy
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-editable --no-dev \
    && cp deploy/dagster-compose.yaml /app/dagster_home/dagster.yaml

USER 10001:10001
VOLUME ["/data"]
ENTRYPOINT ["python", "-m", "trading_pipeline.container"]
CMD ["fetch"]
