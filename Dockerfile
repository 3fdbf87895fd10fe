# syntax=docker/dockerfile:1
# The one-shot history fetcher. Its arguments are `trading-pipeline fetch`'s flags:
#   docker run --rm -v "$PWD/data:/data" IMAGE --symbol BTCUSDT,ETHUSDT --interval 1h --from 2024-01-01 --fill_daily
FROM python:3.11-slim-bookworm

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    TP_DATA_DIR=/data

RUN groupadd --system --gid 10001 tp \
    && useradd --system --uid 10001 --gid tp --home-dir /app --shell /usr/sbin/nologin tp \
    && mkdir -p /data \
    && chown tp:tp /data

WORKDIR /app

# Dependencies only: this layer is rebuilt when the lock file changes, not when the code does.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-install-project

# Then the code, installed into the same environment (not editable).
COPY README.md ./
COPY trading_pipeline ./trading_pipeline
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-editable

USER 10001:10001
VOLUME ["/data"]
ENTRYPOINT ["trading-pipeline", "fetch"]
CMD []
