# Ferroflow in a container: a build stage with the Rust toolchain and DPDK's
# development files, and a runtime stage with DPDK's runtime libraries (its
# PMDs are loaded as plugins) and the two binaries.
#
#   docker build -t ferroflow .
#   docker run --privileged --network host -v /dev/hugepages:/dev/hugepages \
#       -v /etc/ferroflow:/etc/ferroflow -v /run/ferroflow:/run/ferroflow ferroflow
#
# The container needs hugepages from the host, and the vhost-user socket
# directory shared with QEMU. ferroflowd reads /etc/ferroflow/ferroflow.toml.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libdpdk-dev pkg-config libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ferroflowd --bin ferroflowctl

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends dpdk iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ferroflowd /src/target/release/ferroflowctl /usr/bin/
VOLUME ["/etc/ferroflow", "/run/ferroflow"]
ENTRYPOINT ["/usr/bin/ferroflowd"]
CMD ["--config", "/etc/ferroflow/ferroflow.toml"]
