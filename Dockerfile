# Switchyard in a container: `docker build -t switchyard .`
#
#   mkdir -p data
#   docker run -d --name switchyard -p 8080:8080 -v "$(pwd)/data:/app/data" \
#     --user "$(id -u):$(id -g)" -e SWITCHYARD_ADMIN_TOKENS="$(openssl rand -hex 24)" switchyard
#
# The container listens on 0.0.0.0, so Switchyard refuses to start without admin credentials
# (SWITCHYARD_ADMIN_TOKENS, SWITCHYARD_ADMIN_PASSWORD[_HASH]); see README "Running in a container".

# --- build ---
FROM rust:1-bookworm AS build
WORKDIR /src
# Manifests first, so the dependency layer is reused while only sources change.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY bench bench
RUN cargo build --release --locked -p switchyard \
 && install -D -m 0755 target/release/switchyard /out/switchyard

# --- run ---
FROM debian:bookworm-slim
# TLS roots are compiled in (webpki-roots); the image needs no packages.
COPY --from=build /out/switchyard /usr/local/bin/switchyard
# Any UID works (OpenShift-style random UIDs included): the data dir belongs to group 0 and is group
# writable, and the binary needs no passwd entry.
RUN mkdir -p /app/data && chgrp -R 0 /app && chmod -R g=u /app
WORKDIR /app
USER 10001:0
ENV SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8080 \
    SWITCHYARD_APP_DIR=/app/data \
    SWITCHYARD_LOG_FORMAT=json
VOLUME ["/app/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchyard"]
