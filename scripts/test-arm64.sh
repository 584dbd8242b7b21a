#!/usr/bin/env bash
# The arm64 binary, for real: cross-builds aarch64-unknown-linux-musl (scripts/build-static.sh:
# static, under 1.25 MiB, dependency list embedded and checked), then runs the integration tests
# that need no container against it under qemu-user (qemu-aarch64-static): exit codes, signals
# forwarded, zombies reaped as PID 1 of a PID namespace, `certs`, `--dry-run`, discovery,
# uvicorn, TLS. Prints a summary: passed, failed, skipped by name.
#
# The test harness (x86_64) runs the arm64 binary through a wrapper that execs qemu; the children
# vardr-init starts (python, sh) are native. Left out, each for its reason:
#   faults.rs, properties.rs: strace on the emulator / no binary at all.
#   the two signal-state tests: qemu-user itself leaves host signal 32 ignored (SigIgn bit 31),
#     and a native child inherits that across execve: they would test qemu, not vardr-init.
#   the subreaper test: qemu 7.2 answers prctl(PR_SET_CHILD_SUBREAPER) with EINVAL; vardr-init
#     warns and goes on, and reaping is tested as PID 1 (where it matters in a container). The
#     clean-up test likewise runs only its PID 1 half here (tests/lifecycle.rs).
#   the pre-start test in a root without a shell: the harness's qemu wrapper is a shell script,
#     which cannot run in that root; the pre-start path itself is tested under qemu elsewhere.
# Needs qemu-user-static (installed by .ci/run), root for the PID-namespace tests (CI=true makes
# their absence a failure) and the test venv (scripts/test-venv.sh, shared with scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-musl
qemu=$(command -v qemu-aarch64-static || true)
if [ -z "$qemu" ]; then
    [ "${CI:-}" = true ] && { echo "test-arm64: CI=true but qemu-aarch64-static is missing (apt-get install qemu-user-static)" >&2; exit 1; }
    echo "SKIPPED: qemu-aarch64-static is not installed (apt-get install qemu-user-static)" >&2
    exit 0
fi

bin=$(bash scripts/build-static.sh --target aarch64)
python3 scripts/check-dependency-list.py "$bin" "$target" | tail -2
file_type=$(readelf -hW "$bin" | sed -n 's/^ *Machine: *//p')
echo "test-arm64: $bin: $file_type, $(stat -c %s "$bin") bytes"
[ "$file_type" = AArch64 ] || { echo "test-arm64: $bin is not an AArch64 binary" >&2; exit 1; }

venv=$(bash scripts/test-venv.sh)

work=$(mktemp -d)
chmod 755 "$work" # tests run vardr-init as another user too
trap 'rm -rf "$work"' EXIT
# Absolute paths: some tests run vardr-init with a PATH that has no qemu on it.
printf '#!/bin/sh\nexec %s %s "$@"\n' "$qemu" "$bin" >"$work/vardr-init"
chmod +x "$work/vardr-init"
"$work/vardr-init" --version

tests=()
for file in tests/*.rs; do
    name=$(basename "$file" .rs)
    case "$name" in faults | properties) continue ;; esac
    tests+=(--test "$name")
done
skips=(
    child_starts_with_empty_signal_mask_and_default_dispositions
    inherited_ignored_and_blocked_signals_do_not_leak_into_the_child
    orphans_are_reaped_by_vardr_init_as_subreaper_when_not_pid1
    pre_start_path_runs_a_python_file_with_the_apps_python_in_a_root_without_a_shell
)
skip_args=()
for s in "${skips[@]}"; do skip_args+=(--skip "$s"); done

status=0
VARDR_TEST_BIN="$work/vardr-init" VARDR_TEST_VENV="$venv" VARDR_TEST_EMULATOR=qemu-aarch64 \
    cargo test --locked --no-fail-fast "${tests[@]}" -- "${skip_args[@]}" >"$work/log" 2>&1 || status=$?
counts=$(awk '/^test result: /{p += $4; f += $6} END {print p + 0, f + 0}' "$work/log")
if [ "$status" != 0 ]; then
    cat "$work/log"
fi
grep -E '^test .* FAILED$' "$work/log" || true
echo "arm64 ($("$qemu" --version | head -1)):"
echo "  ${counts% *} passed, ${counts#* } failed, in $(( ${#tests[@]} / 2 )) test files"
echo "  left out: faults.rs, properties.rs, ${skips[*]}"
exit "$status"
