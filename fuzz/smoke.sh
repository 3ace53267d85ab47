#!/usr/bin/env bash
# Smoke-run every cargo-fuzz target for a short time.
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET]      (default 20)
#
# Builds all targets (AddressSanitizer, debug assertions), runs each from a
# scratch corpus seeded with fuzz/seeds/<target>/, and prints one TAP line
# per target, then "N passed, N failed". Exits non-zero on any crash, hang,
# out-of-memory or build failure. Crash inputs are left in
# fuzz/artifacts/<target>/, logs in fuzz/target/smoke/<target>.log.
#
# Needs: rustup stable (cargo-fuzz's -Z flags are enabled with
# RUSTC_BOOTSTRAP=1, no nightly needed), and a C compiler (the bundle target reads the
# Sigstore production trusted root from tests/data).
#
# Environment: FUZZ_TARGETS="a b" runs a subset; FUZZ_TIMEOUT is libFuzzer's
# per-input timeout in seconds (default 30); CARGO_BUILD_JOBS limits the build;
# FUZZ_SANITIZER=none builds without AddressSanitizer (what CI uses: the same
# libFuzzer coverage-guided runs over every target, panics and aborts still
# caught, memory errors only through Rust's own checks; the build is several
# times cheaper than an ASan build of the whole dependency tree). Default:
# address.
set -uo pipefail

secs="${1:-20}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
    ;;
esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$fuzz_dir")"
cd "$repo" || exit 2

export RUSTC_BOOTSTRAP=1
all_targets="policy simple_signing dsse statement bundle cache_entry reference offline_bundle"
targets="${FUZZ_TARGETS:-$all_targets}"
per_input_timeout="${FUZZ_TIMEOUT:-30}"
sanitizer="${FUZZ_SANITIZER:-address}"

trust_root="$repo/tests/data/trust-roots/production/trusted_root.json"
if [ ! -f "$trust_root" ]; then
    echo "smoke.sh: $trust_root is missing: it is part of the repository (tests/data)" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "# installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2 || {
        echo "smoke.sh: cargo install cargo-fuzz failed" >&2
        exit 2
    }
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$fuzz_dir/target/$host/release"
log_dir="$fuzz_dir/target/smoke"
mkdir -p "$log_dir"

echo "# building fuzz targets ($(cargo fuzz --version), sanitizer $sanitizer)"
# Default profile: optimized, with debug assertions and overflow checks.
build_args=(--sanitizer "$sanitizer")
build_args+=(--fuzz-dir "$fuzz_dir" --target-dir "$fuzz_dir/target")
build_start=$(date +%s)
if ! cargo fuzz build "${build_args[@]}" >"$log_dir/build.log" 2>&1; then
    tail -n 40 "$log_dir/build.log" | sed 's/^/# /'
    echo "not ok 1 - build fuzz targets"
    echo "0 passed, 1 failed"
    exit 1
fi

echo "# build took $(($(date +%s) - build_start)) s"

# The cache_entry target makes a temporary state directory that outlives
# the process (libFuzzer exits without running destructors): keep it here.
scratch_tmp="$fuzz_dir/target/smoke/tmp"
rm -rf "$scratch_tmp"
mkdir -p "$scratch_tmp"
export TMPDIR="$scratch_tmp"

set -- $targets
echo "1..$#"
n=0
passed=0
failed=0
for t in $targets; do
    n=$((n + 1))
    corpus="$fuzz_dir/corpus/$t"
    artifacts="$fuzz_dir/artifacts/$t"
    log="$log_dir/$t.log"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$fuzz_dir/seeds/$t" ]; then
        cp -n "$fuzz_dir/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    fi
    if [ ! -x "$bin_dir/$t" ]; then
        echo "not ok $n - fuzz $t: binary $bin_dir/$t not built"
        failed=$((failed + 1))
        continue
    fi
    "$bin_dir/$t" "$corpus" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout="$per_input_timeout" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    [ -n "$execs" ] || execs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
    artifact="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)"
    if [ "$rc" -eq 0 ] && [ -z "$artifact" ]; then
        echo "ok $n - fuzz $t: ${execs:-?} execs, no crash"
        passed=$((passed + 1))
    else
        if [ -n "$artifact" ]; then
            echo "not ok $n - fuzz $t: crash $artifact"
        else
            echo "not ok $n - fuzz $t: libFuzzer exited $rc without an artifact (see $log)"
        fi
        # The panic message and the top of the stack, as TAP diagnostics.
        grep -m 1 -A 12 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)|==[0-9]+==ERROR" "$log" |
            sed 's/^/# /'
        failed=$((failed + 1))
    fi
done
rm -rf "$scratch_tmp"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
