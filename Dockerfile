# The relocate image: `relocate worker` for scale-out (issue 14), and the CLI itself.
#
#   docker build -t registry.example.ch/relocate:0.2.0 .
#   docker push registry.example.ch/relocate:0.2.0
#
# Multi-stage: the build stage compiles the same binary the README installs; the run
# stage holds only that binary and CA certificates, runs as a non-root user (65532,
# the UID the worker Job's securityContext names) and works on a read-only root file
# system (the worker writes only to $TMPDIR, an emptyDir the Job mounts at /tmp).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p orchestrator \
 && install -D -m 0755 target/release/relocate /out/relocate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin relocate
COPY --from=build /out/relocate /usr/local/bin/relocate
USER 65532:65532
ENV TMPDIR=/tmp
ENTRYPOINT ["/usr/local/bin/relocate"]
CMD ["--help"]
