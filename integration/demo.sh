#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine (root, Rust toolchain >= 1.89):
# installs what it needs, builds Portcullis, starts a private containerd with
# node-wide enforcement (a directory holding runc -> portcullis-runc first on
# its PATH, as the package's containerd.service drop-in does), journald and a
# registry on 127.0.0.1:5000, signs one image in cosign's format, and shows:
# with a plain `ctr run` (no runtime flag) the signed image runs and the
# unsigned one is refused; the opt-in runtime io.containerd.portcullis.v2
# does the same; the journal holds every verdict. Everything it started is
# stopped at the end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
export PC_WORK=${PC_WORK:-/tmp/portcullis-demo}
bash "$HERE/setup.sh"
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build"
(cd "$ROOT" && cargo build --workspace --quiet)
PC=$PC_BIN_DIR/portcullis
SIGN=$PC_BIN_DIR/portcullis-testsign

trap 'pc_exit_trap $?' EXIT
STARTED=$(date -u "+%Y-%m-%d %H:%M:%S UTC")
pc_start_registry
# Node-wide enforcement: containerd finds `runc` here first, so every runc
# container on this containerd passes the gate, whatever the client.
mkdir -p "$PC_WORK/node-wide"
ln -sfn "$PC_BIN_DIR/portcullis-runc" "$PC_WORK/node-wide/runc"
export PC_CONTAINERD_PATH_PREPEND=$PC_WORK/node-wide
pc_start_containerd
mkdir -p "$PC_WORK/keys" "$PORTCULLIS_STATE_DIR"

step "a release key, two images, one signed (cosign registry format, by sigstore-rs)"
"$SIGN" keygen --scheme ecdsa-p256 --private "$PC_WORK/keys/release.key" --public "$PC_WORK/keys/release.pub"
pc_push_image demo/signed:v1 demo-signed >/dev/null
pc_push_image demo/unsigned:v1 demo-unsigned >/dev/null
"$SIGN" sign --plain-http --key "$PC_WORK/keys/release.key" "$PC_REGISTRY/demo/signed:v1"

step "the policy"
cat >"$PORTCULLIS_POLICY" <<POLICY
mode = "enforce"
default = "deny"

[[rule]]
name = "demo"
images = ["$PC_REGISTRY/demo/*"]

[[rule.signer]]
key = "$PC_WORK/keys/release.pub"
POLICY
cat "$PORTCULLIS_POLICY"
"$PC" policy check "$PORTCULLIS_POLICY"

step "pull, and cache signatures on the node (the shim never uses the network)"
for i in signed unsigned; do
  pc_pull "demo/$i:v1" >/dev/null
  "$PC" fetch --plain-http "$PC_REGISTRY/demo/$i:v1" || true
done

step "node-wide: ctr run $PC_REGISTRY/demo/signed:v1 (no runtime flag: containerd's runc is the gate)"
pc_ctr run --rm "$PC_REGISTRY/demo/signed:v1" demo-signed \
  /bin/sh -c 'echo "hello from a verified container"'

step "node-wide: ctr run $PC_REGISTRY/demo/unsigned:v1"
if pc_ctr run --rm "$PC_REGISTRY/demo/unsigned:v1" demo-unsigned /bin/true; then
  echo "demo: the unsigned image ran: this is a bug" >&2
  exit 1
fi
echo "(refused, as it should be)"

step "opt-in runtime: ctr run --runtime io.containerd.portcullis.v2 $PC_REGISTRY/demo/signed:v1"
pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$PC_REGISTRY/demo/signed:v1" demo-signed-2 \
  /bin/sh -c 'echo "hello again, through the shim wrapper"'

step "opt-in runtime: ctr run --runtime io.containerd.portcullis.v2 $PC_REGISTRY/demo/unsigned:v1"
if pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$PC_REGISTRY/demo/unsigned:v1" demo-unsigned-2 /bin/true; then
  echo "demo: the unsigned image ran: this is a bug" >&2
  exit 1
fi
echo "(refused, as it should be)"

step "the journal: portcullis audit"
"$PC" audit --since "$STARTED"
step "the journal: the node-wide allow and deny records as journald holds them"
journalctl -o verbose --no-pager SYSLOG_IDENTIFIER=portcullis PORTCULLIS_NAMESPACE="$PC_NS" PORTCULLIS_GATE=runc -n 2 |
  grep -E '^[A-Z]|MESSAGE=|PORTCULLIS_(VERDICT|GATE|CONTAINER_ID|IMAGE_REF|IMAGE_DIGEST|RULE|MODE|REASON|SIGNER)=|PRIORITY=|MESSAGE_ID='
