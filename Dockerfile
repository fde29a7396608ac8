# syntax=docker/dockerfile:1
# The hub as a slim, non-root image: `hub run` with the configuration mounted at /etc/hub,
# mapping files baked in at /app/mappings, the configuration mounted at /app/config/hub.yaml
# (relative paths in it are read from its folder, so config/hub.example.yaml's
# `mappings_dir: ../mappings` and `../var/...` resolve under /app), and the SQLite store on the
# /var/lib/hub volume. See compose.yaml.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY schemas ./schemas
# The project's wheel and those of its dependencies, so the final stage installs offline.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/hub/bin:$PATH
RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin hub
# Bind-mounted rather than copied, so the wheels never become an image layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/hub \
    && /opt/hub/bin/pip install --no-cache-dir --no-index --find-links /wheels vn-public-service-hub \
    && mkdir -p /app/config /app/var /var/lib/hub \
    && chown hub:hub /app/var /var/lib/hub
WORKDIR /app
COPY mappings /app/mappings
USER hub
VOLUME ["/var/lib/hub"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["hub"]
CMD ["run", "-c", "/app/config/hub.yaml"]
