# chaostoolkit-mesh for game days in a cluster: chaosmesh, chaostoolkit and
# chaostoolkit-kubernetes, run as a non-root user. No Envoy and no Prometheus: the cluster
# has its own mesh. Build (and push to your registry) with the tag the CronJob uses:
#
#   docker build -t chaostoolkit-mesh:0.1.0 .
#
# `chaosmesh gameday cronjob` runs it with a read-only root filesystem; it writes only to
# volumes: /work (working directory and HOME), /tmp and /journals.
ARG PYTHON_IMAGE=python:3.13-slim

FROM ${PYTHON_IMAGE} AS build
# The install steps live in one script that a test replays in a clean virtual environment.
COPY docker/install-python-layer.sh /build/
COPY pyproject.toml README.md /build/src/
COPY chaosmesh_ext /build/src/chaosmesh_ext
# EMBEDDED=embedded adds the embedded mesh (Envoy), for `gameday cronjob --allow-embedded`.
ARG EMBEDDED=""
RUN sh /build/install-python-layer.sh /opt/chaosmesh /build/src ${EMBEDDED}

FROM ${PYTHON_IMAGE}
# The virtual environment keeps its path: its scripts name /opt/chaosmesh/bin/python.
COPY --from=build /opt/chaosmesh /opt/chaosmesh
RUN groupadd --gid 10001 chaos \
    && useradd --uid 10001 --gid 10001 --home-dir /work --no-create-home \
        --shell /usr/sbin/nologin chaos \
    && mkdir -p /work /journals /experiments \
    && chown 10001:10001 /work /journals
ENV PATH=/opt/chaosmesh/bin:$PATH \
    HOME=/work \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /work
USER 10001:10001
CMD ["chaosmesh", "--help"]
