# The anytask HTTP service (anytask serve) on the CPU.
#
#   docker build -t anytask-serve .
#   docker run -p 8000:8000 -e ANYTASK_TOKEN=<at least 8 characters> -v anytask-home:/data anytask-serve
#
# On an NVIDIA GPU: build with the CUDA wheels of torch (they carry their CUDA runtime; the host needs the
# driver and the NVIDIA container toolkit) and run with --gpus all; the service picks the GPU (device auto):
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t anytask-serve:cuda .
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ANYTASK_CACHE_DIR=/data/cache

WORKDIR /opt/anytask
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY src ./src
# torch from its own index (the CPU wheel by default); the pins in constraints.txt for everything else
RUN pip install --extra-index-url "${TORCH_INDEX}" -c constraints.txt ".[serve]" \
    && python -c "from anytask.backbones import create_backbone; create_backbone('minilm')" \
    && useradd --create-home --uid 10001 anytask \
    && mkdir -p /data \
    && chown anytask /data

USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# the token comes from $ANYTASK_TOKEN; without one the service refuses to start (or add --read-only)
ENTRYPOINT ["anytask", "serve", "--host", "0.0.0.0", "--port", "8000", "--home", "/data"]
