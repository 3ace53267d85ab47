#!/usr/bin/env bash
# Audit evidence, end to end, on real parts: a private containerd + runc, the
# machine's journald, Debian's docker-registry, `portcullis sync` observing
# task starts, `portcullis heartbeat`, and Debian's chromium rendering the
# report headless.
#
# Two phases, one after the other:
#   A  enforce only: a signed image with SLSA provenance runs, an unsigned one
#      is refused. The pack for A alone must pass every audit step.
#   B  the policy gains warn, audit and exemption rules; those starts run, and
#      a container is started with plain io.containerd.runc.v2 (a gap). The
#      pack for A+B must fail exactly the steps those break.
# Then: every started digest with its records, the gap, JSON Schema
# validation, `evidence verify` (and its failure after one changed byte),
# `evidence merge`, and the report's pass/fail rows in headless chromium.
#
# Run after setup.sh and a workspace build (test-all.sh does both).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"

PASS=0
FAIL=0
FAILED=()
SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
R=$PC_REGISTRY
KEYS=$PC_WORK/keys
RUNTIME=io.containerd.portcullis.v2
SCHEMA=$PC_REPO_ROOT/docs/evidence.schema.json
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR


PC_ID_PREFIX=ev # lib.sh's new_id: ev-NAME-RANDOM

# run_start NAME IMAGE EXPECT [RUNTIME]: start a container; EXPECT run|refuse.
declare -A ID
run_start() {
  local name=$1 image=$2 expect=$3 runtime=${4:-$RUNTIME} id rc out
  id=$(new_id "$name")
  ID[$name]=$id
  set +e
  out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm \
    --runtime "$runtime" "$R/$image" "$id" /bin/true 2>&1)
  rc=$?
  set -e
  if [[ $expect == run && $rc -eq 0 ]] || [[ $expect == refuse && $rc -ne 0 ]]; then
    ok "start $name ($image, $runtime): ${expect}s"
  else
    not_ok "start $name ($image, $runtime): expected $expect" "rc=$rc $out"
  fi
}

# wait_journal FILTER...: until journalctl finds a record (bounded).
wait_journal() {
  for _ in $(seq 1 100); do
    [[ -n $(journalctl -o cat --no-pager -q "$@" 2>/dev/null | head -n 1) ]] && return 0
    sleep 0.1
  done
  return 1
}

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

SYNC_PID=
STANDIN_PID=
# Keeps the suite's own status: a helper process already gone is not a
# failure (its `kill` would otherwise end the EXIT trap with status 1 under
# set -e after every case passed).
cleanup() {
  local rc=$?
  set +e
  pc_exit_report "$rc"
  if [[ -n $SYNC_PID ]] && ! kill "$SYNC_PID" 2>/dev/null; then
    echo "# portcullis sync (pid $SYNC_PID) had already exited; its log ends: $(tail -n 2 "$PC_WORK/logs/sync.log" 2>/dev/null | tr '\n' ' ')"
  fi
  [[ -n $STANDIN_PID ]] && kill "$STANDIN_PID" 2>/dev/null
  pc_stop_all || { echo "# cleanup of $PC_WORK failed (see pc: messages)" >&2; [[ $rc -ne 0 ]] || rc=1; }
  exit "$rc"
}
trap cleanup EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"

echo "# keys, images, signatures, provenance"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/builder.key" --public "$KEYS/builder.pub"
declare -A DIGEST
for spec in app/signed:1 app/unsigned:1 warn/unsigned:1 audit/unsigned:1 exempt/debug:1 plain/app:1 kl/good:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "ev-${spec//[:\/]/-}" | tail -n 1)
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/app/signed:1" >/dev/null
ATT=$PC_WORK/att
mkdir -p "$ATT"
python3 "$HERE/attest/make_attestation.py" --key "$KEYS/builder.key" --subject-digest "${DIGEST[app/signed:1]}" \
  --subject-name "$R/app/signed" --out "$ATT/app-signed.json" --predicate-version v1 \
  --builder-id https://builder.example/slsa/v1 --source-uri https://git.example/acme/app --source-ref refs/tags/v1.0.0
"$SIGN" attach-attestation --plain-http --envelope "$ATT/app-signed.json" "$R/app/signed@${DIGEST[app/signed:1]}" >/dev/null
# keyless: a Sigstore bundle from the local Fulcio/Rekor stand-in, so a verdict
# records a Rekor log index and a trust-root digest the pack must re-verify against
KL=$PC_WORK/keyless
mkdir -p "$KL"
pc_start_standin "$KL"
KL_ID=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
KL_ISS=https://token.actions.githubusercontent.com
pc_manifest_raw kl/good:1 >"$KL/good.manifest"
pc_node "$HERE/keyless/sign-image.mjs" --standin-url "$STANDIN_URL" --artifact "$KL/good.manifest" \
  --digest "${DIGEST[kl/good:1]}" --subject "$KL_ID" --issuer "$KL_ISS" --out "$KL/good.bundle.json" \
  --trusted-root-out "$KL/good.root.json" >/dev/null
"$SIGN" attach-bundle --plain-http --bundle "$KL/good.bundle.json" "$R/kl/good@${DIGEST[kl/good:1]}" >/dev/null
kill "$STANDIN_PID" 2>/dev/null || true
STANDIN_PID=

echo "# portcullis sync observes containerd (task starts, image pulls)"
SYNC_SINCE=$(date '+%Y-%m-%d %H:%M:%S')
"$PC" sync --plain-http --address "$PC_CONTAINERD_SOCK" --state-dir "$PORTCULLIS_STATE_DIR" \
  >"$PC_WORK/logs/sync.log" 2>&1 &
SYNC_PID=$!
OBSERVER_ID=$PC_MID_OBSERVER
if wait_journal --since "$SYNC_SINCE" "MESSAGE_ID=$OBSERVER_ID" PORTCULLIS_OBSERVER=start; then
  ok "sync records that it observes containerd's events"
else
  not_ok "sync records that it observes containerd's events" "$(tail -n 5 "$PC_WORK/logs/sync.log")"
fi
for spec in "${!DIGEST[@]}"; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true
done

policy_a() {
  cat >"$PORTCULLIS_POLICY" <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "app"
images = ["$R/app/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]
source_uris = ["https://git.example/acme/*"]
[[rule.provenance.signer]]
key = "$KEYS/builder.pub"
EOF
}
policy_b() {
  policy_a
  cat >>"$PORTCULLIS_POLICY" <<EOF

[[rule]]
name = "warned"
images = ["$R/warn/*"]
mode = "warn"
[[rule.signer]]
key = "$KEYS/release.pub"

[[rule]]
name = "audited"
images = ["$R/audit/*"]
mode = "audit"
[[rule.signer]]
key = "$KEYS/release.pub"

[[rule]]
name = "exempt"
images = ["$R/exempt/*"]
action = "allow"

[[rule]]
name = "keyless"
images = ["$R/kl/*"]
trust_root = "$KL/trusted_root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"
EOF
}

echo "# phase A: enforce only"
policy_a
# Records from here on only: an earlier run's heartbeat for the same policy
# digest must not stand in for this one's.
HB_SINCE=@$(date +%s.%6N)
hb=$("$PC" heartbeat --json)
[[ $(jq -r .mode <<<"$hb") == enforce && $(jq -r .policy_digest <<<"$hb") == sha256:* ]] &&
  ok "heartbeat states mode and policy digest" || not_ok "heartbeat --json" "$hb"
ls "$PORTCULLIS_STATE_DIR"/policies/sha256-*.toml >/dev/null 2>&1 &&
  ok "heartbeat archives the policy by digest" || not_ok "heartbeat archives the policy"
HB_ID=$PC_MID_HEARTBEAT
wait_journal --since "$HB_SINCE" "MESSAGE_ID=$HB_ID" "PORTCULLIS_POLICY_DIGEST=$(jq -r .policy_digest <<<"$hb")" &&
  ok "heartbeat record in the journal" || not_ok "heartbeat record in the journal"
sleep 1.2
T0=$(date +%s)
run_start allowed app/signed:1 run
run_start denied app/unsigned:1 refuse
sleep 1.2
T1=$(date +%s)
sleep 1.2

echo "# phase B: warn, audit, exemption, and a container without the gate"
policy_b
"$PC" heartbeat >/dev/null
run_start allowed-again app/signed:1 run
run_start warned warn/unsigned:1 run
run_start audited audit/unsigned:1 run
run_start exempted exempt/debug:1 run
run_start keyless kl/good:1 run
run_start plain-runc plain/app:1 run io.containerd.runc.v2
TS_ID=$PC_MID_TASK_STARTED
wait_journal "MESSAGE_ID=$TS_ID" "PORTCULLIS_CONTAINER_ID=${ID[plain-runc]}" &&
  ok "sync recorded the plain runc task start" || not_ok "sync recorded the plain runc task start" "$(tail -n 5 "$PC_WORK/logs/sync.log")"
wait_journal "MESSAGE_ID=$TS_ID" "PORTCULLIS_CONTAINER_ID=${ID[exempted]}" || true
sleep 1.2
T2=$(date +%s)

echo "# evidence packs"
EA=$PC_WORK/evidence-a
EB=$PC_WORK/evidence-b
rm -rf "$EA" "$EB" "$PC_WORK/evidence-fleet" "$PC_WORK/evidence-tampered"
set +e
"$PC" evidence --from "@$T0" --to "@$T1" -o "$EA" --address "$PC_CONTAINERD_SOCK" --this-policy-only --node node-a >"$PC_WORK/logs/evidence-a.txt" 2>&1
rc_a=$?
"$PC" evidence --from "@$T0" --to "@$T2" -o "$EB" --address "$PC_CONTAINERD_SOCK" --this-policy-only --node node-b >"$PC_WORK/logs/evidence-b.txt" 2>&1
rc_b=$?
set -e
[[ $rc_a -eq 0 ]] && ok "pack A written, every step passes (exit 0)" || not_ok "pack A exit 0" "rc=$rc_a $(cat "$PC_WORK/logs/evidence-a.txt")"
[[ $rc_b -eq 1 ]] && ok "pack B written, some step fails (exit 1)" || not_ok "pack B exit 1" "rc=$rc_b $(cat "$PC_WORK/logs/evidence-b.txt")"
A=$EA/evidence.json
B=$EB/evidence.json
[[ -s $A && -s $B ]] || { not_ok "evidence.json written" "A or B missing"; echo "$PASS passed, $FAIL failed"; exit 1; }

steps() { jq -r '.steps[] | "\(.id)=\(.status)"' "$1" | tr '\n' ' '; }
want_a="signatures-present=pass provenance-present=pass signatures-reverified=pass enforcement-configured=pass verification-logged=pass no-unsigned-deployed=pass revoked-stopped=pass "
want_b="signatures-present=fail provenance-present=fail signatures-reverified=pass enforcement-configured=fail verification-logged=fail no-unsigned-deployed=fail revoked-stopped=pass "
[[ $(steps "$A") == "$want_a" ]] && ok "pack A: every audit step passes" || not_ok "pack A steps" "$(steps "$A")" "$(jq -c .steps "$A")"
[[ $(steps "$B") == "$want_b" ]] && ok "pack B: the expected steps fail, re-verification passes" || not_ok "pack B steps" "$(steps "$B")" "$(jq -c .steps "$B")"

echo "# every started digest appears with its records"
for pair in allowed:app/signed:1 allowed-again:app/signed:1 warned:warn/unsigned:1 audited:audit/unsigned:1 exempted:exempt/debug:1 keyless:kl/good:1; do
  name=${pair%%:*}
  spec=${pair#*:}
  n=$(jq --arg d "${DIGEST[$spec]}" --arg c "${ID[$name]}" '[.images[] | select(.digest == $d) | .records[] | select(.container_id == $c)] | length' "$B")
  [[ $n -eq 1 ]] && ok "pack B: $spec (${DIGEST[$spec]:0:19}…) with the record of $name" || not_ok "pack B has $spec with $name's record" "found $n"
done
n=$(jq '.images | length' "$B")
[[ $n -eq 5 ]] && ok "pack B: 5 distinct digests started" || not_ok "pack B: 5 distinct digests" "found $n"
[[ $(jq '.images | length' "$A") -eq 1 ]] && ok "pack A: only phase A's digest" || not_ok "pack A digests" "$(jq -c '[.images[].digest]' "$A")"
img=$(jq --arg d "${DIGEST[app/signed:1]}" '.images[] | select(.digest == $d)' "$B")
[[ $(jq -r '.records[0].signer' <<<"$img") == key:*release.pub* && $(jq -r '.records[0].provenance_builder' <<<"$img") == https://builder.example/slsa/v1 &&
  $(jq -r '.records[0].provenance_source' <<<"$img") == https://git.example/acme/app && $(jq -r '.records[0].policy_digest' <<<"$img") == sha256:* ]] &&
  ok "verified record: signer, provenance builder and source, policy digest" || not_ok "verified record fields" "$(jq -c '.records[0]' <<<"$img")"
[[ $(jq -r '.reverification.signature.status' <<<"$img") == pass && $(jq -r '.reverification.provenance.status' <<<"$img") == pass ]] &&
  ok "signature and provenance re-verified from the pack" || not_ok "re-verification" "$(jq -c .reverification <<<"$img")"
st=$EB/$(jq -r '.provenance_statement' <<<"$img")
[[ -s $st && $(jq -r '.subject[0].digest.sha256' "$st") == "${DIGEST[app/signed:1]#sha256:}" && $(jq -r '.predicate.runDetails.builder.id' "$st") == https://builder.example/slsa/v1 ]] &&
  ok "the verified provenance statement is in the pack, decoded" || not_ok "provenance statement in the pack" "$(jq -c . "$st" 2>&1 | head -c 300)"
[[ $(jq '.documents | length' <<<"$img") -ge 1 && -s $EB/$(jq -r '.documents[0].file' <<<"$img") ]] &&
  ok "signature document copied into the pack" || not_ok "documents in the pack" "$(jq -c .documents <<<"$img")"
kimg=$(jq --arg d "${DIGEST[kl/good:1]}" '.images[] | select(.digest == $d)' "$B")
root_digest=sha256:$(sha256sum "$KL/trusted_root.json" | cut -d' ' -f1)
[[ $(jq -r '.records[0].signer_subject' <<<"$kimg") == "$KL_ID" && $(jq -r '.records[0].rekor_log_index' <<<"$kimg") =~ ^[0-9]+$ &&
  $(jq -r '.records[0].trust_root_digest' <<<"$kimg") == "$root_digest" ]] &&
  ok "keyless record: certificate identity, Rekor log index, trust-root digest" || not_ok "keyless record fields" "$(jq -c '.records[0]' <<<"$kimg")"
[[ $(jq -r '.reverification.signature.status' <<<"$kimg") == pass && $(jq -r '.reverification.trust_root_digest' <<<"$kimg") == "$root_digest" ]] &&
  ok "keyless signature re-verified against the recorded trust root" || not_ok "keyless re-verification" "$(jq -c .reverification <<<"$kimg")"
tf=$(jq -r --arg d "$root_digest" '.trust_roots[] | select(.digest == $d) | .file' "$B")
[[ -n $tf && $(sha256sum "$EB/$tf" | cut -d' ' -f1) == "${root_digest#sha256:}" ]] &&
  ok "the recorded trust root is in the pack" || not_ok "trust root in the pack" "$(jq -c .trust_roots "$B")"
[[ $(jq --arg c "${ID[denied]}" '[.denials[] | select(.container_id == $c and .verdict == "deny")] | length' "$B") -eq 1 ]] &&
  ok "denial listed" || not_ok "denial listed" "$(jq -c .denials "$B")"
[[ $(jq --arg w "${ID[warned]}" --arg a "${ID[audited]}" '[.unverified_allows[] | select((.container_id == $w and .kind == "warned") or (.container_id == $a and .kind == "audited"))] | length' "$B") -eq 2 ]] &&
  ok "warn- and audit-mode allows listed" || not_ok "warn/audit allows" "$(jq -c .unverified_allows "$B")"
[[ $(jq --arg c "${ID[exempted]}" '[.exemptions[] | select(.container_id == $c and .rule == "exempt")] | length' "$B") -eq 1 ]] &&
  ok "exemption listed" || not_ok "exemption listed" "$(jq -c .exemptions "$B")"
[[ $(jq '[.policies[] | select(.file != null)] | length' "$B") -eq 2 ]] &&
  ok "both policy versions, with their texts" || not_ok "policy versions" "$(jq -c .policies "$B")"
[[ $(jq --arg k "key $KEYS/release.pub" --arg id "keyless subject $KL_ID issuer $KL_ISS" \
  '[.policies[].trusted[] | select(contains($k) or contains($id))] | length' "$B") -ge 3 ]] &&
  ok "each policy version lists the keys and identities it trusted" || not_ok "policy trusted" "$(jq -c '[.policies[].trusted]' "$B")"
[[ $(jq '[.keys[] | select(.file != null)] | length' "$B") -eq 2 ]] &&
  ok "the policies' keys are in the pack" || not_ok "keys in the pack" "$(jq -c .keys "$B")"
[[ $(jq '[.inactive_periods[] | select(.reason | test("mode enforce with rules .*warned=warn"))] | length' "$B") -ge 1 ]] &&
  ok "the warn/audit-mode period is reported as enforcement not active" || not_ok "inactive period" "$(jq -c .inactive_periods "$B")"
[[ $(jq '.inactive_periods | length' "$A") -eq 0 ]] && ok "pack A: no inactive period (heartbeat before it)" || not_ok "pack A inactive" "$(jq -c .inactive_periods "$A")"
[[ $(jq -r .journal_integrity.sealing "$B") =~ ^(enabled|not-enabled|unknown)$ ]] &&
  ok "journal sealing stated: $(jq -r .journal_integrity.sealing "$B")" || not_ok "journal sealing"

echo "# the gap"
gap=$(jq --arg c "${ID[plain-runc]}" '[.gaps[] | select(.container_id == $c)]' "$B")
[[ $(jq length <<<"$gap") -eq 1 && $(jq -r '.[0].runtime' <<<"$gap") == io.containerd.runc.v2 && $(jq -r '.[0].found_by' <<<"$gap") == task-start-record &&
  $(jq -r '.[0].image' <<<"$gap") == "$R/plain/app:1@sha256:"* ]] &&
  ok "the plain runc container is reported as a gap (from its task-start record)" || not_ok "gap reported" "$(jq -c .gaps "$B")"
[[ $(jq '.gaps | length' "$B") -eq 1 ]] && ok "no other gap (gated starts all have verdicts)" || not_ok "only one gap" "$(jq -c .gaps "$B")"
[[ $(jq '.observation.unobserved | length' "$B") -eq 0 && $(jq '.observation.containers_examined' "$B") != null ]] &&
  ok "whole period observed; containerd's records examined" || not_ok "observation" "$(jq -c .observation "$B")"
cid=$(new_id kept)
pc_ctr containers create "$R/plain/app:1" "$cid" /bin/true >/dev/null
rm -rf "$PC_WORK/evidence-c"
"$PC" evidence --since 10m -o "$PC_WORK/evidence-c" --address "$PC_CONTAINERD_SOCK" --this-policy-only >/dev/null 2>&1 || true
[[ $(jq --arg c "$cid" '[.gaps[] | select(.container_id == $c and .found_by == "containerd-container-record")] | length' "$PC_WORK/evidence-c/evidence.json") -eq 1 ]] &&
  ok "a runc container record containerd holds is reported (--since)" || not_ok "container-record gap" "$(jq -c .gaps "$PC_WORK/evidence-c/evidence.json")"
pc_ctr containers rm "$cid" >/dev/null 2>&1 || true

echo "# JSON Schema (draft 2020-12)"
validate() {
  python3 - "$SCHEMA" "$1" <<'PY'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)
for e in errors[:5]:
    print("/".join(map(str, e.absolute_path)), e.message[:300])
sys.exit(1 if errors else 0)
PY
}
check "pack A validates against docs/evidence.schema.json" validate "$A"
check "pack B validates against docs/evidence.schema.json" validate "$B"
bad=$PC_WORK/bad.json
jq 'del(.gaps)' "$B" >"$bad"
if validate "$bad" >/dev/null 2>&1; then not_ok "the schema rejects a pack without gaps"; else ok "the schema rejects a pack without gaps"; fi

echo "# integrity"
check "evidence verify passes on pack A" "$PC" evidence verify "$EA"
check "evidence verify passes on pack B" "$PC" evidence verify "$EB"
(cd "$EB" && sha256sum -c --quiet MANIFEST.sha256) && ok "sha256sum -c accepts the manifest" || not_ok "sha256sum -c"
T=$PC_WORK/evidence-tampered
cp -a "$EB" "$T"
doc=$T/$(jq -r --arg d "${DIGEST[app/signed:1]}" '.images[] | select(.digest == $d) | .documents[0].file' "$B")
python3 - "$doc" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.index(b'"data"') + 12  # a byte inside the first layer's base64 payload
b[i] = ord("A") if b[i] != ord("A") else ord("B")
open(p, "wb").write(bytes(b))
PY
set +e
out=$("$PC" evidence verify "$T" 2>&1)
rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "SHA-256 differs" <<<"$out" && ok "one changed byte in a document: verify fails (manifest)" ||
  not_ok "tampered document detected" "rc=$rc $out"
(cd "$T" && find . -type f ! -name MANIFEST.sha256 -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >MANIFEST.sha256)
set +e
out=$("$PC" evidence verify "$T" 2>&1)
rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "re-verification fails" <<<"$out" && ok "same change with a recomputed manifest: verify fails (re-verification)" ||
  not_ok "tampered document with forged manifest detected" "rc=$rc $out"

G=$PC_WORK/evidence-gapless
rm -rf "$G"
cp -a "$EB" "$G"
jq '.gaps = [] | .summary.gaps = 0' "$EB/evidence.json" >"$G/evidence.json"
(cd "$G" && find . -type f ! -name MANIFEST.sha256 -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >MANIFEST.sha256)
set +e
out=$("$PC" evidence verify "$G" 2>&1)
rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "gaps differ from what journal/records.json" <<<"$out" &&
  ok "a gap removed from evidence.json (manifest recomputed): verify re-derives it from the records and fails" ||
  not_ok "removed gap detected" "rc=$rc $out"

echo "# fleet"
F=$PC_WORK/evidence-fleet
set +e
"$PC" evidence merge "$EA" "$EB" -o "$F" >"$PC_WORK/logs/merge.txt" 2>&1
rc=$?
set -e
[[ $rc -eq 1 && $(jq -r .format "$F/evidence.json") == portcullis-evidence-fleet/1 && $(jq '.nodes | length' "$F/evidence.json") -eq 2 ]] &&
  ok "merge: a fleet pack of 2 nodes, result fail (node-b fails)" || not_ok "merge" "rc=$rc $(cat "$PC_WORK/logs/merge.txt")"
[[ $(jq -r '.steps[] | select(.id == "verification-logged") | .failing_nodes[0]' "$F/evidence.json") == node-b* ]] &&
  ok "fleet names the failing node per step" || not_ok "fleet failing nodes" "$(jq -c .steps "$F/evidence.json")"
check "fleet pack validates against the schema" validate "$F/evidence.json"
check "evidence verify passes on the fleet pack (and each node in it)" "$PC" evidence verify "$F"
set +e
out=$("$PC" evidence merge "$EA" "$T" -o "$PC_WORK/evidence-fleet2" 2>&1)
rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q "does not verify" <<<"$out" && ok "merge refuses a tampered pack" || not_ok "merge refuses tampered" "rc=$rc $out"

echo "# report.html in headless chromium"
if ! command -v chromium >/dev/null; then
  not_ok "chromium installed (integration/setup.sh installs it)"
else
  render() { timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$PC_WORK/chromium" "$@" 2>/dev/null; }
  grep -qiE '<(script|link|img|iframe)|src=|href="(https?:)?//' "$EB/report.html" &&
    not_ok "report.html is self-contained" "$(grep -oiE '<(script|link|img|iframe)[^>]*|src=[^ ]*|href="(https?:)?//[^"]*' "$EB/report.html" | head -3)" ||
    ok "report.html is self-contained (no script, stylesheet link, image or external URL)"
  domB=$(render --dump-dom "file://$EB/report.html")
  domA=$(render --dump-dom "file://$EA/report.html")
  rows() { grep -o 'id="step-[a-z-]*" class="step [a-z]*"' | sed 's/id="step-\([a-z-]*\)" class="step \([a-z]*\)"/\1=\2/' | tr '\n' ' '; }
  [[ $(rows <<<"$domA") == "$want_a" ]] && ok "chromium: pack A's table shows six PASS rows" || not_ok "chromium pack A rows" "$(rows <<<"$domA")"
  [[ $(rows <<<"$domB") == "$want_b" ]] && ok "chromium: pack B's table shows the expected PASS and FAIL rows" || not_ok "chromium pack B rows" "$(rows <<<"$domB")"
  grep -q "${ID[plain-runc]}" <<<"$domB" && ok "chromium: the gap's container is in the rendered report" || not_ok "gap in rendered report"
  grep -q 'href="#gaps"' <<<"$domB" && grep -q 'id="gaps"' <<<"$domB" && ok "chromium: steps link to their evidence sections" || not_ok "step links"
  rm -f "$PC_WORK/report.png"
  render --screenshot="$PC_WORK/report.png" --window-size=1280,1700 --hide-scrollbars "file://$EB/report.html" >/dev/null || true
  [[ -s $PC_WORK/report.png && $(head -c 8 "$PC_WORK/report.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] &&
    ok "chromium: screenshot $PC_WORK/report.png" || not_ok "chromium screenshot"
  if [[ -n ${EVIDENCE_SCREENSHOT:-} && -s $PC_WORK/report.png ]]; then cp "$PC_WORK/report.png" "$EVIDENCE_SCREENSHOT"; fi
fi

echo "# doctor states mode, policy digest and trust-root digest"
d=$("$PC" doctor --json --address "$PC_CONTAINERD_SOCK" || true)
e=$(jq -c '.checks[] | select(.name == "enforcement")' <<<"$d")
# (an empty digest, from a failed heartbeat, would match anything)
pd=$("$PC" heartbeat --json | jq -r '.policy_digest // empty') || pd=
[[ $pd == sha256:?* ]] && grep -qF -- "$pd" <<<"$e" && [[ $(jq -r .status <<<"$e") == warn ]] &&
  ok "doctor: enforcement check names the policy digest, warns for warn/audit rules" ||
  not_ok "doctor enforcement" "heartbeat's policy digest '$pd'; doctor: $e"

echo
echo "# ${#FAILED[@]} failure(s)${FAILED[*]:+: ${FAILED[*]}}"
echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
