#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine (root, Rust toolchain >= 1.89):
# installs the Debian packages, starts journald, checks formatting and lints,
# runs the unit tests, then the integration suite on a real containerd + runc,
# journald and docker-registry on loopback, the offline-bundle tests, and the
# Debian package test (installs and purges the package on this machine).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
cd "$ROOT"

if ! command -v cargo >/dev/null; then
  echo "test-all: cargo not found; install a Rust toolchain >= 1.89 (rustup) first" >&2
  exit 1
fi

# Build outputs live in the machine's cache, not in the clone: a fresh clone
# of the repository (as CI makes) then rebuilds only our own crates, never the
# dependency tree (~5 min debug, ~9 min for the fuzz targets on 2 cores).
# A `target` that already exists (a developer's checkout) is left alone;
# PORTCULLIS_BUILD_CACHE=none builds inside the clone.
BUILD_CACHE=${PORTCULLIS_BUILD_CACHE:-/var/cache/portcullis-build}
if [[ $BUILD_CACHE != none ]]; then
  for t in target fuzz/target; do
    if [[ ! -e $t && ! -L $t ]]; then
      mkdir -p "$BUILD_CACHE/${t//\//-}"
      ln -s "$BUILD_CACHE/${t//\//-}" "$t"
      echo "test-all: $t -> $BUILD_CACHE/${t//\//-} (the machine's build cache)"
    fi
  done
fi

# Each phase's heading carries the time since set-up began (the relayed
# run below inherits the start), so a log shows where a run's time went: on
# a bare machine the set-up and the pinned Go tools take the first quarter
# of it (BENCHMARKS.md, "From a bare machine").
export _PORTCULLIS_TEST_ALL_T0=${_PORTCULLIS_TEST_ALL_T0:-$(date +%s)}
phase() {
  local s=$(($(date +%s) - _PORTCULLIS_TEST_ALL_T0))
  printf '== [%d:%02d] %s\n' $((s / 60)) $((s % 60)) "$*"
}

if [[ -z ${_PORTCULLIS_TEST_ALL_RELAYED:-} ]]; then
  phase "set-up (Debian packages, journald)"
  bash "$HERE/setup.sh"
  # Everything else writes through output-relay.py (python3 is installed by
  # now): into a pipe of our own, which the relay copies to ours, waiting
  # whenever ours would block. A CI run once ended the fault suite silently at
  # a write (set -e): a shared pipe that some process left non-blocking fails
  # writes with EAGAIN while the runner lags behind.
  export _PORTCULLIS_TEST_ALL_RELAYED=1
  set +e
  bash "$HERE/test-all.sh" "$@" 2>&1 | python3 "$HERE/output-relay.py"
  statuses=("${PIPESTATUS[@]}")
  ((statuses[1] == 0)) || echo "test-all: the output relay ended with status ${statuses[1]}" >&2
  exit "${statuses[0]}"
fi

phase "pinned Go-built components (containerd 2.x, crictl, crane/registry, cosign) in /opt/portcullis-tools"
bash "$HERE/tools.sh"
bash "$HERE/attest/install.sh"
bash "$HERE/keyless/install.sh"

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

phase "unit tests"
cargo test --workspace --quiet 2>&1 | tee "${TMPDIR:-/tmp}/portcullis-unit.log"
grep -q "test result: ok" "${TMPDIR:-/tmp}/portcullis-unit.log"

# The gates ship built for musl (packaging/build-gates): the library's unit
# tests (the journald deadline's thread-directed timer among them), the
# sandbox (its seccomp allow-list meets musl's system calls, its allocator
# talc's) and the gates' own start, tested on that target too.
phase "start path on musl, as shipped: the library's, the sandbox's and the gates' tests"
cargo test --locked --quiet --target "$(packaging/build-gates --print-target)" --lib --test sandbox --test gates

phase "trust root: TUF update against a local repository (python-tuf), rollback refused"
bash "$HERE/tuf/test.sh"

phase "integration suite (real containerd, runc, journald, registry)"
bash "$HERE/suite.sh"

phase "adversarial suite (hostile inputs on the real containerd: every case refused with its reason)"
bash "$HERE/adversarial.sh"

# Wall time of each suite added this turn (CI budget: 90 min in all).
timed() {
  local t0=$SECONDS rc=0
  bash "$@" || rc=$?
  echo "== $(basename "$1"): $((SECONDS - t0)) s wall"
  return "$rc"
}

phase "runc gate: node-wide enforcement at the OCI runtime (runc -> portcullis-runc first on containerd's PATH)"
timed "$HERE/runc-gate.sh"
# The suites run the debug gates; here the gates as the package ships them
# (packaging/build-gates: release, musl, static) meet the real containerd,
# runc and journald: the runc gate suite on containerd 2.x, and the fault
# suite (journald frozen or down, containerd stopped, the sandbox's limits),
# where the C library and the allocator show.
phase "the gates as shipped (musl, static, release: integration/shipped-bins.sh)"
SHIPPED=$(bash "$HERE/shipped-bins.sh" | tail -n 1)
phase "runc gate on containerd 2.4.2, the shipped gates (rootfs, root.path, runtime_path cases on 2.x)"
PC_BIN_DIR=$SHIPPED PC_CONTAINERD_VERSION=2.4.2 timed "$HERE/runc-gate.sh"

phase "containerd 2.x (v2.2.9 JSON v3 start, v2.4.2 stdin bootstrap): core cases and an adversarial slice through the shim wrapper"
timed "$HERE/containerd2.sh"

phase "CRI with crictl on containerd 1.6 and v2.4.2: packaged handler and node-wide runc gate"
timed "$HERE/cri.sh"

phase "platform binding (containerd's manifest choice from an index; a .sig signed 65 times), containerd 1.6 then 2.4.2"
timed "$HERE/platform.sh"
if [[ -x /opt/portcullis-tools/containerd-v2.4.2/containerd ]]; then
  PC_PLATFORM_CONTAINERD_DIR=/opt/portcullis-tools/containerd-v2.4.2 timed "$HERE/platform.sh"
else
  echo "test-all: /opt/portcullis-tools/containerd-v2.4.2 missing: the platform suite on containerd 2.x did not run" >&2
  exit 1
fi
phase "platform binding through the node-wide runc gate (ctr run on the plain runc shim), containerd 1.6"
PC_PLATFORM_GATE=runc timed "$HERE/platform.sh"

phase "T33: snapshots squatted under a chain ID, detected by portcullis sync, containerd 1.6 then 2.4.2"
timed "$HERE/squat.sh"
PC_CONTAINERD_VERSION=2.4.2 timed "$HERE/squat.sh"
phase "revocation reaching running containers: portcullis reverify reports, then stops (containerd 1.6)"
timed "$HERE/reverify.sh"
phase "central journal: verdicts of two nodes through systemd-journal-upload to systemd-journal-remote, audit per node"
timed "$HERE/fleet-journal.sh"
phase "policy as a signed OCI artifact: publish, pull on two nodes, six refusals, unreachable, air-gapped, cosign both ways (containerd 1.6)"
timed "$HERE/policy-fleet.sh"

phase "real cosign (v3, key-based): legacy .sig/.att and new bundle forms, SLSA v1 and v0.2 provenance, on containerd 1.6"
timed "$HERE/cosign.sh"

phase "multi-arch images signed or attested on the index (crane + cosign), ctr run --platform, containerd 1.6 then 2.4.2"
timed "$HERE/multiarch.sh"
PC_CONTAINERD_VERSION=2.4.2 timed "$HERE/multiarch.sh"

phase "fault suite (journald, containerd, state directory, fetch killed, concurrent starts)"
bash "$HERE/faults.sh"
phase "fault suite again, the shipped gates"
PC_BIN_DIR=$SHIPPED timed "$HERE/faults.sh"

phase "offline and edge nodes: bundle export/import, no registry, OCI layout via ctr images import"
bash "$HERE/offline.sh"

phase "Debian package: build, dpkg -i, units, drop-in, doctor, sync, bundle, purge"
bash "$HERE/package-test.sh"

phase "audit evidence (packs, schema, offline verify, merge, report in headless chromium)"
bash "$HERE/evidence.sh"

phase "benchmark smoke run (2 pairs per case, no target check; the figures are not measurements)"
PC_WORK=${PC_WORK:-/tmp/portcullis-ci}-bench bash "$HERE/bench.sh" --smoke

phase "criterion benches run once each (test mode, debug build)"
cargo test --bench gate --quiet

phase "fuzz smoke (libFuzzer over every parser of untrusted bytes, no sanitizer, 15 s per target)"
FUZZ_SANITIZER=none bash "$ROOT/fuzz/smoke.sh" 15
phase "all tests passed"
