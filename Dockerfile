# syntax=docker/dockerfile:1.7
# Multi-stage: build wheels with compilers, run on a slim image as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libffi-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

FROM python:3.11-slim AS runtime
# A CJK font so QR posters can print village names in Chinese.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    YDT_ENV=production WORKERS=2 PORT=8000
RUN groupadd --system ydt && useradd --system --gid ydt --home /srv/ydt ydt
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/ydt
COPY --chown=ydt:ydt alembic.ini ./
COPY --chown=ydt:ydt migrations ./migrations
COPY --chown=ydt:ydt app ./app
RUN mkdir -p /srv/ydt/var && chown ydt:ydt /srv/ydt/var
USER ydt
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/healthz', timeout=2)"
# Migrations first (idempotent), reference data (idempotent), then the server.
CMD ["sh", "-c", "ydt migrate && ydt seed && exec ydt serve --host 0.0.0.0 --port ${PORT} --workers ${WORKERS}"]
