#!/usr/bin/env bash
# A PC_BIN_DIR whose two start-path binaries are the ones the package ships:
# portcullis-runc and containerd-shim-portcullis-v2 as packaging/build-gates
# builds them (release, musl, static, non-PIE), beside the debug build's CLI
# and test tools (portcullis, portcullis-testsign, portcullis-rawctr), which
# the suites call as they always do. Prints the directory on its last line.
#
#   PC_BIN_DIR=$(bash integration/shipped-bins.sh | tail -n 1) bash integration/runc-gate.sh
#
# The suites run the debug gates by default (debug assertions, a quick
# build); test-all.sh runs some of them again on these, so what a node
# executes is what the real containerd, runc and journald meet.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
cargo build --workspace --quiet
packaging/build-gates >/dev/null
out=$ROOT/target/shipped-bin
rm -rf "$out"
mkdir -p "$out"
# (build-gates checks that they are static and carry no glibc)
for b in portcullis-runc containerd-shim-portcullis-v2; do
  install -m 0755 "target/start-path/$b" "$out/$b"
done
for b in portcullis portcullis-testsign portcullis-rawctr; do
  ln -s "$ROOT/target/debug/$b" "$out/$b"
done
echo "$out"
