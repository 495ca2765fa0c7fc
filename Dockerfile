# One image for both Python services: docker-compose runs the API and the projection
# process from it with different commands (docs/operations.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IPT_LOG_FORMAT=json

WORKDIR /app
# Exactly the locked versions, each checked against its hash (`make lock` writes the
# file); then the service itself, which brings no dependency of its own.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY projections ./projections
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app ipt

# Never root at run time; /tmp holds the metrics files of the API's workers and the
# projection process's heartbeat.
USER ipt
EXPOSE 8000

# The API by default; the projections service overrides this in docker-compose.yml.
CMD ["ipt-workflow", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
