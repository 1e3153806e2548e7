# Ferroflow in a container: a build stage with the Rust toolchain and DPDK's
# development files, and a runtime stage with only DPDK's runtime libraries
# (the shared libraries ferroflowd links, and the PMD plugins EAL loads),
# the two binaries, their man pages and shell completions.
#
#   docker build -t ferroflow .
#   docker run --network host --cap-add IPC_LOCK --cap-add NET_ADMIN \
#       --cap-add SYS_ADMIN --cap-add SYS_RAWIO --device /dev/vfio \
#       -v /dev/hugepages:/dev/hugepages -v /etc/ferroflow:/etc/ferroflow \
#       -v /run/ferroflow:/run/ferroflow ferroflow
#
# The container needs hugepages from the host, the vhost-user socket
# directory shared with QEMU, and (for NICs) /dev/vfio; ferroflowd reads the
# mounted /etc/ferroflow/ferroflow.toml. The README's "Deploying on a hypervisor host" explains the
# capabilities; deploy/k8s/ferroflow-daemonset.yaml runs the same image.
#
# No Docker engine is needed to check this file: tests/dockerfile-chroot.sh
# runs its stages (FROM/ARG/ENV/WORKDIR/COPY/RUN) in debootstrap chroots and
# checks the result.

ARG DEBIAN_SUITE=bookworm
ARG RUST_VERSION=1.95.0

FROM debian:${DEBIAN_SUITE} AS build
ARG RUST_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
        libdpdk-dev pkg-config libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
# The toolchain from rustup (Debian 12's rustc is too old for the locked crates).
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSfo /tmp/rustup-init \
        https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain "$RUST_VERSION" \
 && rm /tmp/rustup-init \
 && rustc --version
WORKDIR /src
COPY . .
# ferroflowctl is a package of its own (it builds without DPDK); xtask writes
# the man pages and bash/zsh/fish completions of both binaries, laid out as
# under /usr/share, from the same clap definitions the binaries parse.
RUN cargo build --release --locked -p ferroflow -p ferroflowctl --bins \
 && mkdir -p /out \
 && cp target/release/ferroflowd target/release/ferroflowctl /out/ \
 && cargo run --release --locked -p xtask -- docs /out/share \
 && for lib in $(ldd /out/ferroflowd /out/ferroflowctl | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u); do \
        dpkg-query -S "$(readlink -f "$lib")" | cut -d: -f1; \
    done | sort -u > /out/runtime-packages \
 && cat /out/runtime-packages

FROM debian:${DEBIAN_SUITE}-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
# The libraries the binaries link (listed by the build stage from ldd), the
# mempool driver every DPDK app needs, and the PMD plugins for Ferroflow's
# port kinds: vhost-user, tap, pcap, null, ring, virtio, af_packet, and the
# common NICs (Intel, Mellanox, Broadcom, VMware). --no-install-recommends
# keeps every -dev package and the dpdk tools out.
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(cat /tmp/runtime-packages) \
        librte-mempool-ring23 librte-bus-pci23 librte-bus-vdev23 \
        librte-net-vhost23 librte-net-tap23 librte-net-pcap23 librte-net-null23 \
        librte-net-ring23 librte-net-virtio23 librte-net-af-packet23 \
        librte-net-i40e23 librte-net-ice23 librte-net-ixgbe23 librte-net-e1000-23 \
        librte-net-mlx5-23 librte-net-bnxt23 librte-net-vmxnet3-23 \
        iproute2 \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /out/ferroflowd /out/ferroflowctl /usr/bin/
# man/man1/, bash-completion/completions/, zsh/vendor-completions/,
# fish/vendor_completions.d/ (the slim image has no man or bash-completion;
# the files are there for an image that adds them, and `docker cp`).
COPY --from=build /out/share/ /usr/share/
VOLUME ["/etc/ferroflow", "/run/ferroflow"]
ENTRYPOINT ["/usr/bin/ferroflowd"]
CMD ["--config", "/etc/ferroflow/ferroflow.toml"]
