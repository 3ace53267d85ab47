#!/usr/bin/env bash
# Installs and starts what Portcullis' integration tests need on a Debian 12
# machine (root, systemd not PID 1): the Debian packages, and journald.
#
# Safe to run many times: packages already installed are not asked for again
# (no `apt-get update` either), and journald is only started when its socket
# is absent.
#
# The tests start their own PRIVATE containerd and registry (see env.sh). The
# system ones are not needed: Debian's maintainer scripts are kept from
# starting them during the install (see _setup_packages), and a system
# docker-registry already running is stopped, as it holds port 5000.
set -euo pipefail

PACKAGES=(
  containerd runc docker-registry skopeo umoci busybox-static
  protobuf-compiler jq systemd ca-certificates curl
  # pgrep/ps for the tests and their checks; findmnt/umount/setsid.
  procps util-linux
  # bench.sh: the lock sample (strace of wrapper starts).
  strace
  # evidence.sh: report.html rendered headless; evidence.json checked against its schema.
  chromium python3-jsonschema
  # unit-seccomp.py: the shipped units' seccomp filters, built by libseccomp
  # (reverify.sh and squat.sh run reverify and sync under them).
  python3-seccomp
  # fleet-journal.sh: the central journal (systemd-journal-remote and -upload).
  systemd-journal-remote
  # packaging/build-gates: the start-path binaries are linked with musl
  # (musl-gcc compiles aws-lc's C code for that target).
  musl-tools
)

POLICY_RC=/usr/sbin/policy-rc.d
JOURNAL_SOCKET=/run/systemd/journal/socket
JOURNALD=/lib/systemd/systemd-journald
JOURNAL_WAIT_SECONDS=${JOURNAL_WAIT_SECONDS:-10}

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
command -v dpkg-query >/dev/null || die "not a Debian machine (no dpkg-query)"

_missing_packages() {
  local p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || printf '%s\n' "$p"
  done
}

# Removes the temporary policy-rc.d, if we put one there.
_cleanup_policy_rc() {
  if [[ -n ${_POLICY_RC_TMP:-} ]]; then
    rm -f "$POLICY_RC"
    _POLICY_RC_TMP=
  fi
}

_setup_packages() {
  local -a missing
  mapfile -t missing < <(_missing_packages)
  if ((${#missing[@]} == 0)); then
    log "packages: all present"
    return 0
  fi
  log "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Without systemd as PID 1, docker-registry's postinst would start the
  # system registry through its init.d script, listening on :5000 (the port
  # our private registry wants). A policy-rc.d that answers 101 ("action
  # forbidden") stops maintainer scripts from starting any service. Only
  # added when the machine has none, and removed afterwards.
  if [[ ! -e $POLICY_RC ]]; then
    _POLICY_RC_TMP=1
    trap _cleanup_policy_rc EXIT
    printf '#!/bin/sh\n# temporary, from portcullis integration/setup.sh\nexit 101\n' \
      >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"
  fi
  local aptlog
  aptlog=$(mktemp /tmp/portcullis-setup-apt.XXXXXX)
  if ! { apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${missing[@]}"; } >"$aptlog" 2>&1; then
    tail -n 40 "$aptlog" >&2
    die "apt-get failed (full log: $aptlog)"
  fi
  rm -f "$aptlog"
  _cleanup_policy_rc
  mapfile -t missing < <(_missing_packages)
  ((${#missing[@]} == 0)) || die "still missing after install: ${missing[*]}"
  log "packages: installed"
}

# True when journald answers: an entry sent with systemd-cat (native journal
# stream protocol) can be read back with journalctl.
_journal_roundtrip() {
  local tag=$1 nonce=$2
  journalctl --no-pager -q -o cat -t "$tag" 2>/dev/null | grep -qxF "$nonce"
}

_setup_journald() {
  [[ -x $JOURNALD ]] || die "$JOURNALD not found (package systemd)"
  # journald names its files after the machine id; Debian's systemd postinst
  # normally writes it, but a bare container image may have an empty one.
  if [[ ! -s /etc/machine-id ]]; then
    systemd-machine-id-setup >/dev/null 2>&1 || die "cannot create /etc/machine-id"
  fi
  if [[ -S $JOURNAL_SOCKET ]] && pgrep -x systemd-journal >/dev/null; then
    log "journald: socket $JOURNAL_SOCKET present"
  else
    # (A socket left by a journald that died is rebound by the new one.)
    log "journald: starting $JOURNALD"
    mkdir -p /run/systemd/journal
    # Own session, no inherited stdio: it must not hold a CI runner's pipes.
    setsid -f "$JOURNALD" </dev/null >/dev/null 2>&1
  fi

  local tag nonce deadline sent=0
  tag="portcullis-setup"
  nonce="probe-$$-$RANDOM-$(date +%s%N)"
  deadline=$((SECONDS + JOURNAL_WAIT_SECONDS))
  while ((SECONDS < deadline)); do
    if ((sent == 0)) && [[ -S /run/systemd/journal/stdout ]]; then
      if printf '%s\n' "$nonce" | systemd-cat -t "$tag" 2>/dev/null; then
        sent=1
      fi
    fi
    if ((sent == 1)) && _journal_roundtrip "$tag" "$nonce"; then
      log "journald: ready (entry read back)"
      return 0
    fi
    sleep 0.2
  done
  if [[ ! -S $JOURNAL_SOCKET ]]; then
    die "journald did not create $JOURNAL_SOCKET within ${JOURNAL_WAIT_SECONDS}s"
  fi
  if ((sent == 0)); then
    die "systemd-cat could not send to journald within ${JOURNAL_WAIT_SECONDS}s"
  fi
  die "journalctl did not read back a probe entry within ${JOURNAL_WAIT_SECONDS}s"
}

# A system registry started earlier (e.g. by an install without a
# policy-rc.d) listens on :5000, the port of the tests' private registry.
_stop_system_registry() {
  [[ -n ${PC_KEEP_SYSTEM_REGISTRY:-} ]] && return 0
  local pattern='^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' pids
  pids=$(pgrep -f "$pattern" | tr '\n' ' ') || return 0
  log "stopping the system docker-registry, pid $pids(it holds port 5000; PC_KEEP_SYSTEM_REGISTRY=1 keeps it)"
  /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  sleep 0.5
  pids=$(pgrep -f "$pattern" | tr '\n' ' ') || return 0
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null || true
}

# cargo-deb builds the Debian package (packaging/build-deb, package-test.sh).
# Pinned; skipped when that version is installed already. Needs cargo.
CARGO_DEB_VERSION=3.8.0
_setup_cargo_deb() {
  command -v cargo >/dev/null || die "cargo not found (needed for cargo-deb)"
  if [[ $(cargo deb --version 2>/dev/null) == "cargo-deb $CARGO_DEB_VERSION" ]]; then
    log "cargo-deb: $CARGO_DEB_VERSION present"
    return 0
  fi
  log "cargo-deb: installing $CARGO_DEB_VERSION (cargo install --locked)"
  cargo install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb ||
    die "cargo install cargo-deb $CARGO_DEB_VERSION failed"
}

# The Rust standard library for the target the start-path binaries are
# built for (`packaging/build-gates --print-target`: this host's musl).
# rustup adds it; without rustup it must come with the toolchain.
_setup_rust_musl() {
  command -v rustc >/dev/null || die "rustc not found (needed for the start-path binaries)"
  local target
  target=$("$(dirname "${BASH_SOURCE[0]}")/../packaging/build-gates" --print-target) ||
    die "packaging/build-gates --print-target failed"
  if [[ -d $(rustc --print sysroot)/lib/rustlib/$target/lib ]]; then
    log "rust: $target present"
    return 0
  fi
  command -v rustup >/dev/null ||
    die "the Rust standard library for $target is missing and rustup is not here to add it"
  log "rust: adding $target (rustup target add)"
  rustup target add "$target" >/dev/null || die "rustup target add $target failed"
}

_setup_packages
_stop_system_registry
_setup_journald
_setup_cargo_deb
_setup_rust_musl
log "done"
