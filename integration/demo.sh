#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine (root, Rust toolchain >= 1.89):
# installs what it needs, builds Portcullis, starts a private containerd with
# runc, journald and a registry on 127.0.0.1:5000, signs one image in cosign's
# format, and shows: the signed image runs, the unsigned one is refused, and
# the journal holds both verdicts. Everything it started is stopped at the end.
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

trap pc_stop_all EXIT
STARTED=$(date -u "+%Y-%m-%d %H:%M:%S UTC")
pc_start_registry
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

step "ctr run --runtime io.containerd.portcullis.v2 $PC_REGISTRY/demo/signed:v1"
pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$PC_REGISTRY/demo/signed:v1" demo-signed \
  /bin/sh -c 'echo "hello from a verified container"'

step "ctr run --runtime io.containerd.portcullis.v2 $PC_REGISTRY/demo/unsigned:v1"
if pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$PC_REGISTRY/demo/unsigned:v1" demo-unsigned /bin/true; then
  echo "demo: the unsigned image ran: this is a bug" >&2
  exit 1
fi
echo "(refused, as it should be)"

step "the journal: portcullis audit"
"$PC" audit --since "$STARTED"
step "the journal: the two records as journald holds them"
journalctl -o verbose --no-pager SYSLOG_IDENTIFIER=portcullis PORTCULLIS_NAMESPACE="$PC_NS" -n 2 |
  grep -E '^[A-Z]|MESSAGE=|PORTCULLIS_(VERDICT|CONTAINER_ID|IMAGE_REF|IMAGE_DIGEST|RULE|MODE|REASON|SIGNER)=|PRIORITY=|MESSAGE_ID='
