# The image every service in docker-compose.yml runs (`conductor <command>`):
#   docker build -t conductor . && docker run --rm conductor --help
FROM python:3.11-slim AS build
# Compilers only for dependencies without a wheel for this platform; they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/conductor
WORKDIR /src
COPY pyproject.toml README.md ./
COPY conductor conductor
COPY workers workers
COPY nodes nodes
COPY storage storage
# Node-type plugins: add them here (`/opt/conductor/bin/pip install my-nodes`), or in an image
# built FROM this one, as root; every worker needs them.
RUN /opt/conductor/bin/pip install '.[s3]'  # s3: blobs in a bucket (CONDUCTOR_BLOB_URL)

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 conductor \
    && mkdir -p /data/blobs /data/files /data/blueprints \
    && chown -R conductor:conductor /data
COPY --from=build /opt/conductor /opt/conductor
ENV PATH=/opt/conductor/bin:$PATH PYTHONUNBUFFERED=1 CONDUCTOR_DATA_DIR=/data
USER conductor
WORKDIR /data
EXPOSE 8080 5555
ENTRYPOINT ["conductor"]
CMD ["--help"]
