# syntax=docker/dockerfile:1.7
#
# Hardened FastAPI images with vardr-init as ENTRYPOINT (PID 1). Three published variants, chosen
# by PYTHON_VERSION and DISTROLESS (docker-bake.hcl builds all three):
#
#   python12             PYTHON_VERSION=3.12 DISTROLESS=true   CPython 3.12 from python:3.12-slim-bookworm
#                        on gcr.io/distroless/cc-debian12, with the shared libraries it needs (computed)
#   python13             PYTHON_VERSION=3.13 DISTROLESS=false  python:3.13-slim-trixie, hardened
#   python13-distroless  PYTHON_VERSION=3.13 DISTROLESS=true   gcr.io/distroless/python3-debian13
#
# (PYTHON_VERSION=3.12 DISTROLESS=false also builds: python:3.12-slim-bookworm, hardened.)
# Every base image is an ARG so CI can pin digests (NAME@sha256:...). Build secrets: `build-ca`
# (optional) is a CA bundle for pip, for builds behind a TLS-intercepting proxy.

ARG RUST_IMAGE=docker.io/library/rust:1-slim-bookworm
ARG PYTHON312_IMAGE=docker.io/library/python:3.12-slim-bookworm
ARG DISTROLESS_CC_IMAGE=gcr.io/distroless/cc-debian12
ARG PYTHON313_IMAGE=docker.io/library/python:3.13-slim-trixie
ARG DISTROLESS_PYTHON313_IMAGE=gcr.io/distroless/python3-debian13
ARG PYTHON_VERSION=3.12
ARG DISTROLESS=true
# `source`: build vardr-init in the Rust stage below. `prebuilt`: take vardr-init-$TARGETARCH from
# the build context named `prebuilt` (--build-context prebuilt=DIR), for when no Rust image can be
# pulled (the repository's own container tests).
ARG VARDR_BUILD=source

# --- vardr-init, static musl, cross-compiled on the build platform -----------------------------
# Built like scripts/build-static.sh builds it: with cargo auditable (the dependency list image
# scanners read), paths remapped, no timestamps; VARDR_COMMIT names the commit (no .git here).
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS vardr-source
ARG TARGETARCH
SHELL ["/bin/sh", "-eu", "-c"]
WORKDIR /src
# cargo-auditable pinned, as in scripts/build-static.sh.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo install --locked cargo-auditable --version 0.7.7
RUN case "$TARGETARCH" in \
        amd64) target=x86_64-unknown-linux-musl ;; \
        arm64) target=aarch64-unknown-linux-musl ;; \
        *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    echo "$target" > /rust-target; \
    rustup target add "$target"; \
    sysroot=$(rustc --print sysroot); \
    printf 'target.%s.rustflags = ["--remap-path-prefix=/src=/vardr-init", "--remap-path-prefix=%s=/cargo", "--remap-path-prefix=%s=/rustup"]\n' \
        "$target" "$CARGO_HOME" "$sysroot" > /remap.toml
# A pure-Rust crate: rust-lld links both musl targets (self-contained CRT and libc), so no C
# cross toolchain is needed.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
# Dependencies first, against an empty crate: this layer is reused until Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs; \
    cargo build --locked --release --target "$(cat /rust-target)" --config "$(cat /remap.toml)"; \
    rm -rf src
COPY build.rs ./
COPY src src
ARG GIT_COMMIT=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    touch src/main.rs src/lib.rs; \
    VARDR_COMMIT="$GIT_COMMIT" cargo auditable build --locked --release \
        --target "$(cat /rust-target)" --config "$(cat /remap.toml)"; \
    install -D -m 0755 "target/$(cat /rust-target)/release/vardr-init" /out/vardr-init

FROM scratch AS vardr-from-source
COPY --from=vardr-source /out/vardr-init /vardr-init

FROM scratch AS vardr-from-prebuilt
ARG TARGETARCH
# `prebuilt` is a named build context (--build-context), not a stage: hadolint cannot know it.
# hadolint ignore=DL3022
COPY --from=prebuilt vardr-init-${TARGETARCH} /vardr-init

# A stage of this file chosen by an ARG, not an image: there is no tag to pin.
# hadolint ignore=DL3006
FROM vardr-from-${VARDR_BUILD} AS vardr

# --- Python dependencies: a venv in /opt/venv, plus the example app, all precompiled -----------
# Built on the image that has pip; the runtime gets the finished directories, never pip.
# The same steps on each Python (docker/install-deps.sh); `build-ca` is an optional secret.
FROM ${PYTHON312_IMAGE} AS deps-3.12
COPY requirements.txt /tmp/requirements.txt
COPY examples/basic/main.py /app/main.py
COPY docker/install-deps.sh /usr/local/sbin/install-deps.sh
RUN --mount=type=secret,id=build-ca,required=false sh /usr/local/sbin/install-deps.sh

FROM ${PYTHON313_IMAGE} AS deps-3.13
COPY requirements.txt /tmp/requirements.txt
COPY examples/basic/main.py /app/main.py
COPY docker/install-deps.sh /usr/local/sbin/install-deps.sh
RUN --mount=type=secret,id=build-ca,required=false sh /usr/local/sbin/install-deps.sh

# Debian's 3.13 standard library ships as source only (its .pyc files come from a package hook
# that never runs in a distroless image): compile it here, in place, with the same 3.13 magic.
FROM ${DISTROLESS_PYTHON313_IMAGE} AS distroless-python313
FROM deps-3.13 AS debian-stdlib-3.13
COPY --from=distroless-python313 /usr/lib/python3.13 /usr/lib/python3.13
RUN python3 -m compileall -q -j 0 --invalidation-mode checked-hash -x '/(test|tests|idle_test)/' /usr/lib/python3.13; \
    mkdir /links; \
    ln -s /usr/bin/python3.13 /links/python3.13; \
    ln -s python3.13 /links/python3

# --- python12: CPython 3.12 assembled onto distroless cc ----------------------------------------
FROM ${DISTROLESS_CC_IMAGE} AS distroless-cc

FROM ${PYTHON312_IMAGE} AS python3.12-assembly
COPY --from=distroless-cc / /base
COPY --from=deps-3.12 /opt/venv /opt/venv
COPY docker/assemble-python.sh /usr/local/sbin/assemble-python.sh
# /staging gets /usr/local (CPython) and, in the multiarch library directory, exactly the shared
# libraries that python, its extension modules and the venv's need and /base does not have.
RUN sh /usr/local/sbin/assemble-python.sh /base /staging /opt/venv

FROM distroless-cc AS py3.12-distroless-true
COPY --from=python3.12-assembly /staging/ /
COPY --from=deps-3.12 /opt/venv /opt/venv
COPY --from=deps-3.12 /app /app

# --- python:3.X-slim, hardened -------------------------------------------------------------------
FROM ${PYTHON312_IMAGE} AS py3.12-distroless-false
SHELL ["/bin/sh", "-eu", "-c"]
COPY docker/harden-slim.sh /usr/local/sbin/harden-slim.sh
RUN sh /usr/local/sbin/harden-slim.sh && rm /usr/local/sbin/harden-slim.sh
COPY --from=deps-3.12 /opt/venv /opt/venv
COPY --from=deps-3.12 /app /app

FROM ${PYTHON313_IMAGE} AS py3.13-distroless-false
SHELL ["/bin/sh", "-eu", "-c"]
COPY docker/harden-slim.sh /usr/local/sbin/harden-slim.sh
RUN sh /usr/local/sbin/harden-slim.sh && rm /usr/local/sbin/harden-slim.sh
COPY --from=deps-3.13 /opt/venv /opt/venv
COPY --from=deps-3.13 /app /app

# --- python13-distroless: Google's Debian 13 python3 --------------------------------------------
FROM distroless-python313 AS py3.13-distroless-true
COPY --from=debian-stdlib-3.13 /usr/lib/python3.13 /usr/lib/python3.13
# The venv was made by python:3.13-slim, whose interpreter is /usr/local/bin/python3; Debian's is
# /usr/bin/python3.13. These links make the venv's interpreter resolve (Python then finds its
# standard library by walking up from /usr/local/bin to /usr/lib/python3.13), and they keep the
# venv valid for the multi-stage extension pattern, whose builder is python:3.13-slim.
COPY --from=debian-stdlib-3.13 /links/ /usr/local/bin/
COPY --from=deps-3.13 /opt/venv /opt/venv
COPY --from=deps-3.13 /app /app

# --- the image: the variant chosen by the ARGs, plus what every variant shares ---------------------
# The variant stage chosen by the ARGs (a stage of this file, not an image: no tag to pin).
# hadolint ignore=DL3006
FROM py${PYTHON_VERSION}-distroless-${DISTROLESS} AS final
ARG VERSION=dev
ARG GIT_COMMIT=unknown
ARG BUILD_DATE=unknown
ARG PYTHON_VERSION
ARG DISTROLESS
LABEL org.opencontainers.image.title="vardr fastapi" \
      org.opencontainers.image.description="FastAPI on uvicorn, with vardr-init as PID 1 (custom CAs from /certs, signal forwarding, zombie reaping)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="https://github.com/vardr/vardr-init" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.vardr.python-version="${PYTHON_VERSION}" \
      io.vardr.distroless="${DISTROLESS}"
COPY --from=vardr --chmod=0755 /vardr-init /usr/local/bin/vardr-init
# Only /tmp is written (the merged CA bundle); the bytecode was compiled at build time.
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 65532:65532
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/vardr-init", "health"]
ENTRYPOINT ["/usr/local/bin/vardr-init"]
