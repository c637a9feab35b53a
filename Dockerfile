# The project image: the `model-adapter` CLI and every adapter package. The
# KFP pipeline steps, the CronJob submitters and the kind bootstrap Job all
# run it. Build: `make image` (docker build -t model-adapter:dev .).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# Only the project's own wheel here; its dependencies install in the final stage.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# Extras installed with the project: `examples` brings what the digits demo
# adapter needs (the kind cluster runs it). `--build-arg EXTRAS=` for none.
ARG EXTRAS=examples
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /wheels
RUN set -eu; \
    wheel="$(ls /wheels/*.whl)"; \
    pip install --no-cache-dir "${wheel}${EXTRAS:+[$EXTRAS]}"; \
    rm -rf /wheels; \
    useradd --uid 1000 --user-group --create-home --home-dir /home/adapter --shell /usr/sbin/nologin adapter

# Numeric user so Kubernetes can verify runAsNonRoot.
USER 1000:1000
WORKDIR /home/adapter
ENV HOME=/home/adapter \
    MODEL_ADAPTER_HOME=/home/adapter/.model-adapter
CMD ["model-adapter", "--help"]
