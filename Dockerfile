# syntax=docker/dockerfile:1
#
# The msgwire command in a small image. By default it runs `msgwire serve` (every
# reference service: RPC on 7420, HTTP on 7421); `msgwire gateway` and the other
# subcommands are a different CMD away:
#
#   docker build -t msgwire .
#   docker run --rm -p 7420:7420 -p 7421:7421 msgwire
#   docker run --rm -p 8080:7421 -e MSGWIRE_UPSTREAM=users=users:7420 msgwire gateway
#
# Every flag can come from an environment variable MSGWIRE_<FLAG> (see
# `msgwire serve --help`). compose.yaml runs the seed's topology on this image.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and the target directory are cache mounts: after a source change only
# msgwire's own crates are compiled again, not the dependencies. The binary is copied
# out of the mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p msgwire \
    && install -D -m 0755 target/release/msgwire /out/msgwire

FROM debian:bookworm-slim AS runtime
# curl is for the health check only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user owns the data directory (uploads of the files service).
RUN groupadd --gid 10001 msgwire \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data \
       --shell /usr/sbin/nologin msgwire \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=builder /out/msgwire /usr/local/bin/msgwire
ENV MSGWIRE_RPC=0.0.0.0:7420 \
    MSGWIRE_HTTP=0.0.0.0:7421 \
    MSGWIRE_DATA_DIR=/data
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 7420 7421
# /health answers 200 while every dependency (cache, upstreams, …) is ok, 503 if not.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7421/health || exit 1
ENTRYPOINT ["msgwire"]
CMD ["serve"]
