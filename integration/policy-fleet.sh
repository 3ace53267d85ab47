#!/usr/bin/env bash
# Issue 16 part 1: the policy as a signed OCI artifact, on real parts:
# Debian's docker-registry on loopback, a private containerd 1.6 with runc and
# the shim runtime (io.containerd.portcullis.v2), journald, the real cosign
# (v3, integration/tools.sh).
#
# Node A is this machine's gate: its policy file ($PORTCULLIS_POLICY) is a
# symlink to <state A>/policy/current/policy.toml, as /etc/portcullis/policy.toml
# is on a node. Node B is a second state directory and source file (no
# containerd of its own). Cases:
#   publish (signed with a PKCS#8 P-256 key) -> pull on A and B -> a signed
#   container runs under the pulled enforce policy, an unsigned one is refused;
#   the measured time from publish to enforcement (printed, not asserted);
#   a newer serial installs; then a rollback, the same serial with other
#   contents, an expired artifact, a wrong signer, an unsigned artifact and a
#   tampered layer (one byte of the blob flipped in the registry's storage)
#   are each refused with exit 1, leaving the installed release (its digest and
#   the bytes of policy.toml) unchanged and the gate still enforcing;
#   an unreachable registry exits 4 and keeps the policy, with its own
#   MESSAGE_ID; air-gapped: publish --out, pull --from-file on B, a tampered
#   file refused; cosign interop both ways: `cosign verify --key` accepts
#   portcullis's signature, and pull accepts an artifact signed by
#   `cosign sign --key` (a cosign generate-key-pair key) after publish --no-sign
#   (and `cosign verify` with another key refuses); keyless: a Sigstore bundle
#   made by the local stand-in (integration/keyless: mock Fulcio, Rekor, TSA)
#   and attached as a referrer is accepted by a node whose source file names
#   that issuer and subject with the stand-in's trusted root, and refused by
#   a node naming another subject; heartbeat and doctor report the serial and
#   digest in force.
# Ends with "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"
R=$PC_REGISTRY
RUNTIME=io.containerd.portcullis.v2
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"

PC="$PC_BIN_DIR/portcullis"
SIGN="$PC_BIN_DIR/portcullis-testsign"
COSIGN=${PC_TOOLS:-/opt/portcullis-tools}/bin/cosign
[[ -x $COSIGN ]] || { echo "policy-fleet.sh: $COSIGN missing: run integration/tools.sh" >&2; exit 1; }
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR
export COSIGN_PASSWORD=portcullis-it TUF_ROOT=$PC_WORK/tuf
INSTALLED_ID=$PC_MID_POLICY_INSTALLED
REFUSED_ID=$PC_MID_POLICY_REFUSED
UNREACHABLE_ID=$PC_MID_POLICY_UNREACHABLE
REF=$R/fleet/policy:prod
RUN=$SRANDOM

echo "# building the workspace; the keyless stand-in's npm packages (no-op when up to date)"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)
bash "$HERE/keyless/install.sh" >/dev/null

trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
PUB=$PC_WORK/publisher
KEYS=$PC_WORK/keys
A=$PC_WORK/node-a-$RUN
B=$PC_WORK/node-b-$RUN
C=$PC_WORK/node-c-$RUN
mkdir -p "$PUB/keys" "$KEYS" "$A" "$B/state" "$C/state" "$PORTCULLIS_STATE_DIR" "$TUF_ROOT"

echo "# keys: publisher and an impostor (openssl, PKCS#8 P-256), an image signer (portcullis-testsign)"
for k in publisher impostor; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS/$k.pem" 2>/dev/null
  openssl pkey -in "$KEYS/$k.pem" -pubout -out "$KEYS/$k.pub" 2>/dev/null
done
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$PUB/keys/release.pub" >/dev/null

echo "# images: pf/app signed, pf/unsigned not"
pc_push_image pf/app:v1 pf-app >/dev/null
pc_push_image pf/unsigned:v1 pf-unsigned >/dev/null
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/pf/app:v1" >/dev/null
for spec in pf/app:v1 pf/unsigned:v1; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >>"$PC_WORK/logs/fetch.log" 2>&1 || true
done

# write_central COMMENT: the publisher's policy (a relative key path).
write_central() {
  cat >"$PUB/policy.toml" <<EOF
# $1
mode = "enforce"
default = "deny"

[[rule]]
name = "app"
images = ["$R/pf/**"]
[[rule.signer]]
key = "keys/release.pub"
EOF
}
# source FILE KEY [REFERENCE]: a node's source file.
source_file() {
  cat >"$1" <<EOF
reference = "${3:-$REF}"
plain_http = true
keep = 3
[signer]
key = "$2"
EOF
}
source_file "$A/policy-source.toml" "$KEYS/publisher.pub"
source_file "$B/policy-source.toml" "$KEYS/publisher.pub"
# Node A's gate reads the pulled release, as /etc/portcullis/policy.toml would.
rm -f "$PORTCULLIS_POLICY"
ln -s "$PORTCULLIS_STATE_DIR/policy/current/policy.toml" "$PORTCULLIS_POLICY"

# publish SERIAL [ARGS...]: sets OUT, RC, DIGEST (from --json).
publish() {
  local serial=$1
  shift
  set +e
  OUT=$(timeout 120 "$PC" policy publish "$PUB/policy.toml" --plain-http --serial "$serial" --json "$@" 2>&1)
  RC=$?
  set -e
  DIGEST=$(jq -r '.digest // empty' <<<"$OUT" 2>/dev/null || true)
}
# pull NODE_DIR STATE [ARGS...]: sets OUT, RC, and PULL_SINCE (when it began,
# for pull_record).
PULL_SINCE=
pull() {
  local node=$1 state=$2
  shift 2
  PULL_SINCE=@$(date +%s.%6N)
  set +e
  OUT=$(timeout 120 "$PC" policy pull --source "$node/policy-source.toml" --state-dir "$state" "$@" 2>&1)
  RC=$?
  set -e
}
# installed STATE: "<artifact digest> <sha256 of current/policy.toml>".
installed() {
  local rec=$1/policy/current/release.json
  [[ -f $rec ]] || { echo "none"; return; }
  echo "$(jq -r .digest "$rec") $(sha256sum "$1/policy/current/policy.toml" | cut -d' ' -f1)"
}
# pull_record SOURCE_FILE MESSAGE_ID FIELD: FIELD of the newest pull record
# written since the last pull() began (several pulls in a row end in the same
# kind of record: each check must see its own pull's, not the one before).
pull_record() {
  local out
  # Up to 20 s, lib.sh's bound: journald lags under load.
  for _ in $(seq 1 200); do
    out=$(journalctl -o json --no-pager -q --since "$PULL_SINCE" SYSLOG_IDENTIFIER=portcullis-policy-pull "MESSAGE_ID=$2" \
      "PORTCULLIS_POLICY_SOURCE_FILE=$1" 2>/dev/null | tail -n 1 | jq -r --arg f "$3" '.[$f] // empty')
    [[ -n $out ]] && { printf '%s\n' "$out"; return 0; }
    sleep 0.1
  done
  return 1
}

echo "# publish serial 1 and pull on node A: a container runs under the pulled policy"
write_central "serial 1"
T0=$(date +%s%N)
publish 1 --ref "$REF" --key "$KEYS/publisher.pem" --expires 30d
D1=$DIGEST
[[ $RC -eq 0 && $D1 == sha256:* ]] && ok "policy publish pushed serial 1 ($D1)" || not_ok "publish serial 1" "rc=$RC: $OUT"
jq -e '.files | length == 1 and (.[0].path | test("^files/[0-9a-f]{12}-release.pub$"))' <<<"$OUT" >/dev/null &&
  ok "the referenced key is packed as files/<hex12>-release.pub" || not_ok "packed files" "$OUT"
MANIFEST=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/fleet/policy/manifests/$D1")
jq -e '.artifactType == "application/vnd.portcullis.policy.v1" and .annotations["dev.portcullis.policy.serial"] == "1"
  and (.annotations["dev.portcullis.policy.expires"] | length > 0) and (.annotations["org.opencontainers.image.created"] | length > 0)
  and (.annotations["dev.portcullis.policy.digest"] | startswith("sha256:"))' <<<"$MANIFEST" >/dev/null &&
  ok "the registry holds an OCI artifact of type application/vnd.portcullis.policy.v1 with serial, expiry, creation and policy digest" ||
  not_ok "artifact manifest" "$MANIFEST"
T_PUB=$(date +%s%N)
pull "$A" "$PORTCULLIS_STATE_DIR"
T_PULL=$(date +%s%N)
[[ $RC -eq 0 ]] && grep -qF "installed policy serial 1 ($D1)" <<<"$OUT" &&
  ok "policy pull on node A installed serial 1" || not_ok "pull A serial 1" "rc=$RC: $OUT"
set +e
START_OUT=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm --runtime "$RUNTIME" \
  "$R/pf/app:v1" "$(new_id pf-first)" /bin/true 2>&1)
START_RC=$?
set -e
T1=$(date +%s%N)
[[ $START_RC -eq 0 ]] && ok "first start under the pulled policy ran" || not_ok "first start" "$START_OUT"
echo "# measured: publish to enforcement on node A: $(((T1 - T0) / 1000000)) ms (publish $(((T_PUB - T0) / 1000000)) ms, pull $(((T_PULL - T_PUB) / 1000000)) ms, first gated start $(((T1 - T_PULL) / 1000000)) ms; the timer's period, 15 min, comes on top)"
start_case pf-signed-runs pf/app:v1 run allow
start_case pf-unsigned-refused pf/unsigned:v1 refuse deny
[[ $(pull_record "$A/policy-source.toml" "$INSTALLED_ID" PORTCULLIS_POLICY_SERIAL || true) == 1 &&
  $(pull_record "$A/policy-source.toml" "$INSTALLED_ID" PORTCULLIS_POLICY_ARTIFACT || true) == "$D1" ]] &&
  ok "journal: POLICY_INSTALLED record with serial 1 and the artifact digest" || not_ok "installed record"
pull "$B" "$B/state"
[[ $RC -eq 0 && $(installed "$B/state") == "$(installed "$PORTCULLIS_STATE_DIR")" ]] &&
  ok "node B pulled the same release (same artifact digest, same policy bytes)" || not_ok "pull B" "rc=$RC: $OUT"
pull "$A" "$PORTCULLIS_STATE_DIR"
[[ $RC -eq 0 ]] && grep -qF "already in force" <<<"$OUT" && ok "pulling again: already in force, exit 0" || not_ok "pull again" "rc=$RC: $OUT"

echo "# serial 2 installs"
write_central "serial 2"
publish 2 --ref "$REF" --key "$KEYS/publisher.pem"
D2=$DIGEST
pull "$A" "$PORTCULLIS_STATE_DIR"
[[ $RC -eq 0 ]] && grep -qF "serial 2 ($D2)" <<<"$OUT" && grep -qF "replaces serial 1" <<<"$OUT" &&
  ok "serial 2 installed over serial 1" || not_ok "pull serial 2" "rc=$RC: $OUT"
GOOD=$(installed "$PORTCULLIS_STATE_DIR")

# refused NAME KIND PATTERN: the last pull exited 1 with KIND, named PATTERN, and left A unchanged.
refused() {
  local problems=()
  [[ $RC -eq 1 ]] || problems+=("exit $RC, expected 1")
  grep -qF "refused ($2)" <<<"$OUT" || problems+=("no 'refused ($2)' in: $OUT")
  [[ -z $3 ]] || grep -qF -- "$3" <<<"$OUT" || problems+=("no '$3' in: $OUT")
  [[ $(installed "$PORTCULLIS_STATE_DIR") == "$GOOD" ]] || problems+=("installed release changed: $(installed "$PORTCULLIS_STATE_DIR")")
  [[ $(pull_record "$A/policy-source.toml" "$REFUSED_ID" PORTCULLIS_POLICY_REFUSAL || true) == "$2" ]] ||
    problems+=("no POLICY_REFUSED journal record with refusal $2")
  if ((${#problems[@]})); then not_ok "$1" "${problems[@]}"; else ok "$1: $(head -n 1 <<<"$OUT" | cut -c1-160)"; fi
}

echo "# refusals, each leaving serial 2 in force"
write_central "an old serial"
publish 1 --ref "$REF" --key "$KEYS/publisher.pem"
pull "$A" "$PORTCULLIS_STATE_DIR"
refused "rollback (serial 1 after 2) refused" rollback "publish with --serial 3"
write_central "serial 2 again, other contents"
publish 2 --ref "$REF" --key "$KEYS/publisher.pem"
pull "$A" "$PORTCULLIS_STATE_DIR"
refused "same serial with another digest refused" replaced "a new policy needs a new serial"
write_central "serial 3, expiring"
publish 3 --ref "$REF" --key "$KEYS/publisher.pem" --expires 1s
sleep 2
pull "$A" "$PORTCULLIS_STATE_DIR"
refused "expired artifact refused (freeze)" expired "later --expires"
write_central "serial 4 by an impostor"
publish 4 --ref "$REF" --key "$KEYS/impostor.pem"
pull "$A" "$PORTCULLIS_STATE_DIR"
refused "wrong signer refused" signature "no signature verifies"
write_central "serial 5 unsigned"
publish 5 --ref "$REF" --no-sign
pull "$A" "$PORTCULLIS_STATE_DIR"
refused "unsigned artifact refused" signature "is not signed"
write_central "serial 6, layer tampered in the registry's storage"
publish 6 --ref "$REF" --key "$KEYS/publisher.pem"
LAYER=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/fleet/policy/manifests/$DIGEST" | jq -r '.layers[0].digest')
HEX=${LAYER#sha256:}
BLOB=$PC_WORK/registry/docker/registry/v2/blobs/sha256/${HEX:0:2}/$HEX/data
if [[ -f $BLOB ]]; then
  python3 - "$BLOB" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[600] ^= 0x20
open(p, 'wb').write(bytes(b))
EOF
  pull "$A" "$PORTCULLIS_STATE_DIR"
  refused "tampered layer refused" tampered "does not match its digest"
else
  not_ok "tampered layer" "blob file $BLOB not found"
fi
start_case pf-after-refusals-signed-runs pf/app:v1 run allow
start_case pf-after-refusals-unsigned-refused pf/unsigned:v1 refuse deny

echo "# registry unreachable"
mkdir -p "$A/down"
source_file "$A/down/policy-source.toml" "$KEYS/publisher.pub" "127.0.0.1:1/fleet/policy:prod"
pull "$A/down" "$PORTCULLIS_STATE_DIR"
[[ $RC -eq 4 ]] && grep -qF "unreachable" <<<"$OUT" && grep -qF "the policy in force stays (serial 2" <<<"$OUT" &&
  [[ $(installed "$PORTCULLIS_STATE_DIR") == "$GOOD" ]] &&
  ok "unreachable registry: exit 4, says the last good policy (serial 2) stays: $(cut -c1-140 <<<"$OUT")" ||
  not_ok "unreachable" "rc=$RC: $OUT"
[[ -n $(pull_record "$A/down/policy-source.toml" "$UNREACHABLE_ID" MESSAGE || true) ]] &&
  ok "journal: POLICY_UNREACHABLE record" || not_ok "unreachable record"

echo "# air-gapped: publish --out, pull --from-file on node B"
write_central "serial 7, air-gapped"
publish 7 --out "$PC_WORK/policy-7.tar" --key "$KEYS/publisher.pem"
D7=$DIGEST
pull "$B" "$B/state" --from-file "$PC_WORK/policy-7.tar"
[[ $RC -eq 0 ]] && grep -qF "serial 7 ($D7) from file:" <<<"$OUT" && ok "node B installed serial 7 from the file" ||
  not_ok "from-file" "rc=$RC: $OUT"
cp "$PC_WORK/policy-7.tar" "$PC_WORK/policy-7-bad.tar"
python3 - "$PC_WORK/policy-7-bad.tar" <<'EOF'
import sys, tarfile, io
p = sys.argv[1]
src = tarfile.open(p)
members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
out = io.BytesIO()
dst = tarfile.open(fileobj=out, mode='w')
done = False
for m, data in members:
    if data is not None and m.name.startswith('blobs/') and b'mode = "enforce"' in data and not done:
        data = data.replace(b'mode = "enforce"', b'mode = "audit!!"')
        done = True
    if data is not None:
        dst.addfile(m, io.BytesIO(data))
dst.close()
open(p, 'wb').write(out.getvalue())
assert done
EOF
BEFORE_B=$(installed "$B/state")
pull "$B" "$B/state" --from-file "$PC_WORK/policy-7-bad.tar"
[[ $RC -eq 1 ]] && grep -qF "refused (tampered)" <<<"$OUT" && [[ $(installed "$B/state") == "$BEFORE_B" ]] &&
  ok "a tampered file is refused, node B unchanged" || not_ok "tampered file" "rc=$RC: $OUT"

echo "# cosign interop"
set +e
V=$(timeout 120 "$COSIGN" verify --key "$KEYS/publisher.pub" --insecure-ignore-tlog=true --allow-http-registry \
  --new-bundle-format=false "$R/fleet/policy@$D2" 2>&1)
VRC=$?
set -e
[[ $VRC -eq 0 ]] && grep -qF "$D2" <<<"$V" && ok "cosign verify --key accepts the signature portcullis made (serial 2)" ||
  not_ok "cosign verify" "rc=$VRC: $V"
set +e
V=$(timeout 120 "$COSIGN" verify --key "$KEYS/impostor.pub" --insecure-ignore-tlog=true --allow-http-registry \
  --new-bundle-format=false "$R/fleet/policy@$D2" 2>&1)
VRC=$?
set -e
[[ $VRC -ne 0 ]] && ok "cosign verify with another key refuses it (exit $VRC)" || not_ok "cosign verify, other key" "$V"
(cd "$KEYS" && "$COSIGN" generate-key-pair --output-key-prefix cosign >/dev/null 2>&1)
source_file "$C/policy-source.toml" "$KEYS/cosign.pub"
write_central "serial 8, signed by cosign"
publish 8 --ref "$REF" --no-sign
D8=$DIGEST
set +e
S=$(timeout 120 "$COSIGN" sign --key "$KEYS/cosign.key" --allow-http-registry -y --new-bundle-format=false \
  --use-signing-config=false --tlog-upload=false "$R/fleet/policy@$D8" 2>&1)
SRC=$?
set -e
[[ $SRC -eq 0 ]] && ok "cosign sign --key signed the published digest" || not_ok "cosign sign" "rc=$SRC: $S"
pull "$C" "$C/state"
[[ $RC -eq 0 ]] && grep -qF "serial 8 ($D8)" <<<"$OUT" && ok "policy pull accepts the artifact signed by cosign sign --key" ||
  not_ok "pull cosign-signed" "rc=$RC: $OUT"
pull "$A" "$PORTCULLIS_STATE_DIR"
refused "node A (publisher key) refuses the cosign-key signature: wrong signer" signature ""

echo "# keyless: a Sigstore bundle by the local stand-in (mock Fulcio, Rekor, TSA), attached as a referrer"
KL=$PC_WORK/keyless
D=$PC_WORK/node-d-$RUN
E=$PC_WORK/node-e-$RUN
mkdir -p "$KL" "$D/state" "$E/state"
ID_SUBJECT=https://github.com/acme/fleet/.github/workflows/policy.yml@refs/heads/main
ID_ISSUER=https://token.actions.githubusercontent.com
write_central "serial 9, keyless"
publish 9 --ref "$REF" --no-sign
D9=$DIGEST
curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/fleet/policy/manifests/$D9" -o "$KL/manifest.json"
set +e
S=$(timeout 120 node "$PC_REPO_ROOT/integration/keyless/sign-image.mjs" --artifact "$KL/manifest.json" --digest "$D9" \
  --subject "$ID_SUBJECT" --issuer "$ID_ISSUER" --tsa yes --out "$KL/bundle.json" --trusted-root-out "$KL/trusted_root.json" 2>&1 &&
  "$SIGN" attach-bundle --plain-http --bundle "$KL/bundle.json" "$R/fleet/policy@$D9" 2>&1)
SRC=$?
set -e
[[ $SRC -eq 0 ]] && ok "keyless bundle made for serial 9 and attached as a referrer" || not_ok "keyless sign" "rc=$SRC: $S"
# keyless_source FILE SUBJECT
keyless_source() {
  cat >"$1" <<EOF
reference = "$REF"
plain_http = true
[signer]
issuer = "$ID_ISSUER"
subject = "$2"
trust_root = "$KL/trusted_root.json"
EOF
}
keyless_source "$D/policy-source.toml" "$ID_SUBJECT"
keyless_source "$E/policy-source.toml" "https://github.com/acme/other/.github/workflows/x.yml@refs/heads/main"
pull "$D" "$D/state"
[[ $RC -eq 0 ]] && grep -qF "serial 9 ($D9)" <<<"$OUT" && grep -qF "keyless" <<<"$OUT" &&
  ok "policy pull accepts the keyless-signed artifact (issuer + subject + trust root in the source file)" ||
  not_ok "pull keyless" "rc=$RC: $OUT"
pull "$E" "$E/state"
[[ $RC -eq 1 ]] && grep -qF "refused (signature)" <<<"$OUT" && [[ $(installed "$E/state") == none ]] &&
  ok "another keyless identity is refused: $(cut -c1-150 <<<"$OUT")" || not_ok "keyless wrong identity" "rc=$RC: $OUT"

echo "# heartbeat and doctor"
set +e
HB=$(timeout 60 "$PC" heartbeat --json 2>&1)
DOC=$(timeout 60 "$PC" doctor --address "$PC_CONTAINERD_SOCK" --json 2>&1)
set -e
jq -e --arg d "$D2" '.policy_artifact.digest == $d and .policy_artifact.serial == 2' <<<"$HB" >/dev/null &&
  ok "heartbeat states serial 2 and its artifact digest" || not_ok "heartbeat" "$HB"
jq -e '[.checks[] | select(.name == "policy-source")][0] | (.detail | test("serial 2"))' <<<"$DOC" >/dev/null &&
  ok "doctor reports the policy source, serial and age" || not_ok "doctor" "$(jq -c '[.checks[] | select(.name == "policy-source")]' <<<"$DOC" 2>/dev/null || echo "$DOC" | head -c 600)"

ls "$PORTCULLIS_STATE_DIR/policy/releases" | sed 's/^/#   release: /'

summary
