#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine (root, Rust toolchain >= 1.89):
# installs the Debian packages, starts journald, checks formatting and lints,
# runs the unit tests, then the integration suite on a real containerd + runc,
# journald and docker-registry on loopback.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
cd "$ROOT"

if ! command -v cargo >/dev/null; then
  echo "test-all: cargo not found; install a Rust toolchain >= 1.89 (rustup) first" >&2
  exit 1
fi

echo "== set-up (Debian packages, journald)"
bash "$HERE/setup.sh"
bash "$HERE/attest/install.sh"
bash "$HERE/keyless/install.sh"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== unit tests"
cargo test --workspace --quiet 2>&1 | tee "${TMPDIR:-/tmp}/portcullis-unit.log"
grep -q "test result: ok" "${TMPDIR:-/tmp}/portcullis-unit.log"

echo "== trust root: TUF update against a local repository (python-tuf), rollback refused"
bash "$HERE/tuf/test.sh"

echo "== integration suite (real containerd, runc, journald, registry)"
bash "$HERE/suite.sh"

echo "== benchmark smoke run (2 pairs per case, no target check; the figures are not measurements)"
PC_WORK=${PC_WORK:-/tmp/portcullis-ci}-bench bash "$HERE/bench.sh" --smoke

echo "== criterion benches run once each (test mode, debug build)"
cargo test --bench gate --quiet
