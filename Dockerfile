# The project image: the `model-adapter` CLI, kfp and every adapter package. The KFP
# pipeline steps, the CronJob submitters and the kind bootstrap Job all run it.
#
# Build: `make image`. The build needs no network: every dependency comes from a
# wheelhouse that `make wheelhouse` builds on the host with pip (as air-gapped
# clusters need). BASE_IMAGE is any Debian-like image with Python 3.11 and pip;
# `make base-image` makes one from Debian packages where python:3.11-slim cannot
# be pulled.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# Extras installed with the project: `examples` brings what the example adapters need.
ARG EXTRAS=examples
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1
COPY build/wheelhouse /wheels
RUN set -eu; \
    python3 -m pip install --no-index --find-links /wheels "model-adapter${EXTRAS:+[$EXTRAS]}"; \
    rm -rf /wheels; \
    useradd --uid 1000 --user-group --create-home --home-dir /home/adapter --shell /usr/sbin/nologin adapter

# Numeric user so Kubernetes can verify runAsNonRoot.
USER 1000:1000
WORKDIR /home/adapter
ENV HOME=/home/adapter \
    MODEL_ADAPTER_HOME=/home/adapter/.model-adapter
CMD ["model-adapter", "--help"]
