# The samverkan service image: one image for every app service in docker-compose.yml
# (migrate, worker, beat); the command decides what a container does.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package first, so editing a template or a profile does not reinstall the dependencies.
COPY pyproject.toml README.md ./
COPY core ./core
COPY samverkan ./samverkan
COPY service ./service
COPY models ./models
COPY scheduler ./scheduler
COPY worker ./worker
RUN pip install .

# Data the package reads from disk; the settings below point at it, not at site-packages.
COPY templates ./templates
COPY profiles ./profiles

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/samverkan samverkan \
    && mkdir -p /app/var/outbox \
    && chown -R samverkan:samverkan /app/var

ENV SAMVERKAN_TEMPLATES_DIR=/app/templates \
    SAMVERKAN_VAR_DIR=/app/var \
    SAMVERKAN_OUTBOX_DIR=/app/var/outbox

USER samverkan
CMD ["samverkan", "--help"]
