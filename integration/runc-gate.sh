#!/usr/bin/env bash
# The OCI runtime gate (portcullis-runc) on real parts: a private containerd
# 1.6 started with a directory first on its PATH that holds
#   runc -> $PC_BIN_DIR/portcullis-runc
# (node-wide enforcement, the contract packaging/containerd/
# portcullis-node-wide.conf sets up), the real runc behind it, the machine's
# journald and docker-registry on loopback.
#
# Cases: `ctr run` with no runtime flag and with --runtime io.containerd.runc.v2
# (signed runs, unsigned refused with the exact client text and a journal
# record PORTCULLIS_GATE=runc); the opt-in shim runtime plus the runc gate
# (one verification: the second decision is a verdict-cache hit); a client
# naming its own runc binary (bypass: no verdict, reported as an evidence
# gap); binding checks (a container whose spec roots it outside its
# snapshot). Ends with "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"
R=$PC_REGISTRY
RUNTIME=io.containerd.runc.v2
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
KEYS=$PC_WORK/keys
GATE_DIR=$PC_WORK/runtime-bin
REAL_RUNC=$(command -v runc)
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

trap 'rc=$?; set +e; pc_stop_all || echo "# cleanup of $PC_WORK failed (see pc: messages)" >&2; exit $rc' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
# Node-wide enforcement: runc on containerd's PATH is the gate.
rm -rf "$GATE_DIR"
mkdir -p "$GATE_DIR"
ln -s "$PC_BIN_DIR/portcullis-runc" "$GATE_DIR/runc"
export PC_CONTAINERD_PATH_PREPEND=$GATE_DIR
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"

echo "# keys, images, signatures"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
declare -A DIGEST
for spec in rg/signed:v1 rg/unsigned:v1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/rg/signed:v1" >/dev/null
for spec in "${!DIGEST[@]}"; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true
done
write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "rg"
images = ["$R/rg/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF

# jfield ID FIELD [GATE]: FIELD of the newest record for ID (from GATE if given).
jfield() {
  local id=$1 field=$2 gate=${3:-} out
  for _ in $(seq 1 50); do
    out=$(journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis "PORTCULLIS_CONTAINER_ID=$id" \
      ${gate:+"PORTCULLIS_GATE=$gate"} 2>/dev/null | tail -n 1 | jq -r --arg f "$field" '.[$f] // empty')
    [[ -n $out ]] && { printf '%s\n' "$out"; return 0; }
    sleep 0.1
  done
  return 1
}

# run_ctr ID IMAGE [ctr run options...]: sets OUT and RC.
run_ctr() {
  local id=$1 image=$2
  shift 2
  set +e
  OUT=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm "$@" "$R/$image" "$id" /bin/true 2>&1)
  RC=$?
  set -e
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
}

# gate_case LABEL [ctr run options...]: signed runs, unsigned refused, via the runc gate.
gate_case() {
  local label=$1 id
  shift
  id=$(new_id rg-signed)
  run_ctr "$id" rg/signed:v1 "$@"
  [[ $RC -eq 0 && -z $OUT ]] && ok "$label: signed image runs, nothing printed" || not_ok "$label: signed runs" "rc=$RC: $OUT"
  [[ $(jfield "$id" PORTCULLIS_VERDICT runc || true) == allow ]] &&
    ok "$label: journal allow record from PORTCULLIS_GATE=runc" || not_ok "$label: allow record" "$(journal_count "$id") records"
  id=$(new_id rg-unsigned)
  run_ctr "$id" rg/unsigned:v1 "$@"
  local want="portcullis: denied $R/rg/unsigned:v1@${DIGEST[rg/unsigned:v1]}:"
  if [[ $RC -ne 0 ]] && grep -qF "OCI runtime create failed: $want" <<<"$OUT"; then
    ok "$label: unsigned refused; ctr prints: $(grep -o 'OCI runtime create failed: portcullis: denied [^:]*:[^:]*:[^:]*' <<<"$OUT" | head -n 1)"
  else
    not_ok "$label: unsigned refused with '$want'" "rc=$RC: $OUT"
  fi
  [[ $(jfield "$id" PORTCULLIS_VERDICT runc || true) == deny ]] &&
    ok "$label: journal deny record from PORTCULLIS_GATE=runc" || not_ok "$label: deny record" "$(journal_count "$id") records"
  echo "# client text: $OUT"
}

echo "# node-wide: the default runtime and the explicit runc shim both pass the gate"
gate_case "ctr run (no runtime flag)"
gate_case "ctr run --runtime io.containerd.runc.v2" --runtime io.containerd.runc.v2

echo "# the opt-in shim and the runc gate together: verified once"
id=$(new_id rg-both)
run_ctr "$id" rg/signed:v1 --runtime io.containerd.portcullis.v2
[[ $RC -eq 0 ]] && ok "shim + runc gate: signed runs" || not_ok "shim + runc gate: signed runs" "$OUT"
shim_cache=$(jfield "$id" PORTCULLIS_VERDICT_CACHE shim || echo none)
runc_cache=$(jfield "$id" PORTCULLIS_VERDICT_CACHE runc || echo none)
[[ $(journal_count "$id") -eq 2 && $runc_cache == hit ]] &&
  ok "shim + runc gate: two records, the runc gate's is a verdict-cache hit (shim: $shim_cache)" ||
  not_ok "shim + runc gate: one verification" "records=$(journal_count "$id") shim=$shim_cache runc=$runc_cache"
id=$(new_id rg-both-unsigned)
run_ctr "$id" rg/unsigned:v1 --runtime io.containerd.portcullis.v2
[[ $RC -ne 0 && $(journal_count "$id") -eq 1 ]] && grep -qF "portcullis: denied $R/rg/unsigned:v1@sha256:" <<<"$OUT" &&
  ok "shim + runc gate: unsigned refused by the shim alone (one record)" || not_ok "shim refuses first" "$OUT"

echo "# a client naming its own runc binary bypasses the gate: a gap"
T0=$(date +%s)
id=$(new_id rg-bypass)
run_ctr "$id" rg/unsigned:v1 --runc-binary "$REAL_RUNC"
[[ $RC -eq 0 && $(journal_count "$id") -eq 0 ]] &&
  ok "--runc-binary $REAL_RUNC runs an unsigned image with no verdict (known bypass, T63)" ||
  not_ok "bypass behaves as documented" "rc=$RC records=$(journal_count "$id"): $OUT"

echo "# binding: what runs must be the container's snapshot"
# A container from the signed image whose spec roots it somewhere else (T32).
id=$(new_id rg-rootpath)
mkdir -p "$PC_WORK/elsewhere"
pc_ctr containers create "$R/rg/signed:v1" "$id" /bin/true >/dev/null
spec=$(pc_ctr containers info --spec "$id" 2>/dev/null || pc_ctr containers info "$id" | jq .Spec)
set +e
OUT=$(jq --arg p "$PC_WORK/elsewhere" '.root.path = $p' <<<"$spec" >"$PC_WORK/spec-elsewhere.json" &&
  timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm --config "$PC_WORK/spec-elsewhere.json" \
    "$R/rg/signed:v1" "$id-c" /bin/true 2>&1)
RC=$?
set -e
if [[ $RC -ne 0 ]] && grep -qF "portcullis: denied" <<<"$OUT"; then
  ok "a spec rooted outside the bundle's rootfs is refused: $(grep -o 'portcullis: denied.*' <<<"$OUT" | head -n 1)"
else
  not_ok "root.path elsewhere refused" "rc=$RC: $OUT"
fi
pc_ctr containers rm "$id" "$id-c" >/dev/null 2>&1 || true

echo "# the gate's own failures are refusals"
id=$(new_id rg-nodaemon)
if out=$(CONTAINERD_ADDRESS=/nonexistent.sock TTRPC_ADDRESS= "$GATE_DIR/runc" --root /run/containerd/runc/"$PC_NS" \
  --log "$PC_WORK/gate-log.json" --log-format json create --bundle "$PC_WORK/nobundle/io.containerd.runtime.v2.task/$PC_NS/$id" "$id" 2>&1); then
  not_ok "containerd unreachable: refused" "exit 0: $out"
else
  line=$(tail -n 1 "$PC_WORK/gate-log.json" 2>/dev/null || true)
  [[ -z $out ]] && jq -e '.level == "error" and (.msg | startswith("portcullis: denied")) and (.time | length > 0)' <<<"$line" >/dev/null &&
    ok "containerd unreachable: refused, one JSON error line in --log: $(jq -r .msg <<<"$line")" ||
    not_ok "refusal log line" "stderr: $out" "log: $line"
fi
if out=$(PATH="$GATE_DIR" PORTCULLIS_RUNC= "$GATE_DIR/runc" --version 2>&1); then
  not_ok "only itself on PATH: refused" "$out"
else
  grep -qF "no real runc found" <<<"$out" && ok "a gate finding only itself refuses: $out" || not_ok "self only" "$out"
fi
v_gate=$("$GATE_DIR/runc" --version 2>&1 | head -n 1)
v_real=$("$REAL_RUNC" --version 2>&1 | head -n 1)
[[ $v_gate == "$v_real" ]] && ok "other commands pass through unchanged (runc --version: $v_gate)" ||
  not_ok "pass-through" "$v_gate vs $v_real"

summary
