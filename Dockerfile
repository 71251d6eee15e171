# syntax=docker/dockerfile:1
#
# zilliz-operator container image.
#
#   docker build -t ghcr.io/zilliz-operator/zilliz-operator:0.1.0 .
#
# Two stages:
#   builder  rust:<version>-bookworm, runs exactly the command CI runs:
#            cargo build --locked --release --bin zilliz-operator
#   runtime  gcr.io/distroless/cc-debian12:nonroot: glibc, libgcc_s, CA certificates, tzdata,
#            user 65532 — and no shell, no package manager.
#
# Why glibc (distroless/cc) and not a musl static binary on distroless/static or scratch:
# the project is built and tested for x86_64-unknown-linux-gnu only (CI and developer machines
# have no musl target or musl C toolchain, and `ring` needs a C compiler for its target). Shipping
# the binary of the tested target is worth more than the few MB a static build would save. The
# builder is Debian 12 (bookworm) like the runtime, so the binary never needs a newer glibc than
# the runtime has (glibc is backward compatible, not forward). The binary links only libc, libm
# and libgcc_s, which distroless/cc provides.
#
# The build is native: for arm64 images build on an arm64 builder (docker buildx with a native
# node); the rust and distroless images are multi-arch, nothing here names an architecture.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# --- dependency-caching layer -----------------------------------------------------------------
# Only the manifests and the lock file: this layer (all third-party crates, compiled) is reused
# until Cargo.toml, testapi/Cargo.toml, devkit/Cargo.toml or Cargo.lock change. Every workspace member's manifest
# must be present for cargo to load the workspace; the sources are empty stubs. The stub's own
# artifacts are removed afterwards so the real sources are always rebuilt, whatever their mtimes.
COPY Cargo.toml Cargo.lock ./
COPY testapi/Cargo.toml testapi/Cargo.toml
COPY devkit/Cargo.toml devkit/Cargo.toml
RUN mkdir -p src testapi/src devkit/src/bin \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > testapi/src/main.rs \
    && touch testapi/src/lib.rs \
    && echo 'fn main() {}' > devkit/src/bin/demo.rs \
    && touch devkit/src/lib.rs \
    && cargo build --locked --release --bin zilliz-operator \
    && rm -rf src \
        target/release/zilliz-operator* \
        target/release/.fingerprint/zilliz-operator-* \
        target/release/deps/zilliz_operator-* \
        target/release/deps/libzilliz_operator-*

# --- the operator -----------------------------------------------------------------------------
COPY src src
RUN cargo build --locked --release --bin zilliz-operator \
    && cp target/release/zilliz-operator /zilliz-operator \
    && /zilliz-operator --version

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="zilliz-operator" \
      org.opencontainers.image.description="Kubernetes operator for Zilliz Cloud clusters and Milvus collections, partitions and indexes" \
      org.opencontainers.image.source="https://github.com/zilliz-operator/zilliz-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder --chown=0:0 --chmod=0555 /zilliz-operator /zilliz-operator
# distroless "nonroot" is uid/gid 65532; numeric so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/zilliz-operator"]
CMD ["run"]
