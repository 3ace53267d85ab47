#!/usr/bin/env bash
# Threat T33 (issue 17 part 4) on real parts: a snapshot prepared on an
# unsigned image and committed under the chain-ID name of a signed image that
# is not unpacked yet. containerd's unpack would reuse it; Portcullis cannot
# prevent that from its position, and `portcullis sync` detects it: the
# journal gets one record MESSAGE_ID=0b5e8d3f7a2c4e619d4f8a7c2e5b1d93
# (SNAPSHOT_SQUAT) naming the snapshot, its chain ID and why, from the
# `/snapshot/commit` event and again from the start-up scan of a restarted
# `portcullis sync`. Control: genuine pulls (unpacks) while sync runs produce
# no such record.
#
# containerd 1.6 by default; PC_CONTAINERD_VERSION=2.4.2 runs it on
# containerd 2.4.2 (its ctr first on PATH). Ends with "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"
R=$PC_REGISTRY
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
pc_use_containerd_tools

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
KEYS=$PC_WORK/keys
SQUAT_ID=$PC_MID_SNAPSHOT_SQUAT
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

SYNC_PID=
stop_sync() { [[ -z $SYNC_PID ]] || kill "$SYNC_PID" 2>/dev/null; }
trap 'pc_exit_trap $? stop_sync' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"
echo "# containerd $(ctr --version | awk '{print $3}')"

echo "# images: sq/signed (signed, not pulled), sq/unsigned, sq/control: one base layer and one layer of their own"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
CRANE=${PC_TOOLS:-/opt/portcullis-tools}/bin/crane
[[ -x $CRANE ]] || { echo "squat: $CRANE missing: run integration/tools.sh" >&2; exit 1; }
pc_push_image sq/base:v1 sq-base >/dev/null
for name in signed unsigned control; do
  mkdir -p "$PC_WORK/layer-$name/etc"
  echo "$name" >"$PC_WORK/layer-$name/etc/$name"
  tar -C "$PC_WORK/layer-$name" -cf "$PC_WORK/layer-$name.tar" etc
  "$CRANE" append --insecure -b "$R/sq/base:v1" -f "$PC_WORK/layer-$name.tar" -t "$R/sq/$name:v1" >/dev/null 2>&1
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/sq/signed:v1" >/dev/null

# chain_ids REPO:TAG: the chain ID of each layer prefix of the image in the registry, one a line.
chain_ids() {
  local repo=${1%%:*} tag=${1#*:} m cfg chain="" d
  m=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$R/v2/$repo/manifests/$tag")
  cfg=$(jq -r .config.digest <<<"$m")
  for d in $(curl -fsS "http://$R/v2/$repo/blobs/$cfg" | jq -r '.rootfs.diff_ids[]'); do
    if [[ -z $chain ]]; then chain=$d; else chain="sha256:$(printf '%s %s' "$chain" "$d" | sha256sum | cut -d' ' -f1)"; fi
    echo "$chain"
  done
}
SIGNED_CHAIN=$(chain_ids sq/signed:v1 | tail -n 1)
UNSIGNED_CHAIN=$(chain_ids sq/unsigned:v1 | tail -n 1)
mapfile -t CONTROL_CHAINS < <(chain_ids sq/control:v1)
echo "# sq/signed:v1 chain ID $SIGNED_CHAIN"

# sync as portcullis-sync.service runs it: its system-call filter, address
# families and no capabilities (unit-seccomp.py; systemd is not PID 1 here).
start_sync() {
  /usr/bin/python3 "$HERE/unit-seccomp.py" "$PC_REPO_ROOT/systemd/portcullis-sync.service" -- \
    "$PC" sync --plain-http --address "$PC_CONTAINERD_SOCK" --state-dir "$PORTCULLIS_STATE_DIR" \
    >>"$PC_WORK/logs/sync.log" 2>&1 &
  SYNC_PID=$!
  for _ in $(seq 1 100); do
    [[ $(grep -c "start-up scan of committed snapshots" "$PC_WORK/logs/sync.log" || true) -ge $1 ]] && return 0
    sleep 0.1
  done
  echo "# sync did not finish its start-up scan: $(cat "$PC_WORK/logs/sync.log")"
}
# squat_records [FIELD=VALUE...]: this run's squat records, one JSON a line.
T0=$(date +%s)
squat_records() {
  journalctl -o json --no-pager -q --since "@$T0" SYSLOG_IDENTIFIER=portcullis-sync "MESSAGE_ID=$SQUAT_ID" \
    "PORTCULLIS_CONTAINERD_ADDRESS=$PC_CONTAINERD_SOCK" "$@" 2>/dev/null || true
}
# wait_record FIELD=VALUE...: the newest matching record (up to 20 s: sync rechecks a commit for ~8 s).
wait_record() {
  local out
  for _ in $(seq 1 200); do
    out=$(squat_records "$@" | tail -n 1)
    [[ -n $out ]] && { printf '%s\n' "$out"; return 0; }
    sleep 0.1
  done
  return 1
}

echo "# portcullis sync watches snapshot commits"
: >"$PC_WORK/logs/sync.log"
start_sync 1

echo "# control: genuine pulls while sync runs"
pc_pull sq/unsigned:v1 >/dev/null
pc_pull sq/control:v1 >/dev/null

echo "# the squat: a snapshot on sq/unsigned committed under sq/signed's chain ID"
KEY=squat-$SRANDOM
pc_ctr snapshots prepare "$KEY" "$UNSIGNED_CHAIN" >/dev/null
pc_ctr snapshots commit "$SIGNED_CHAIN" "$KEY"
if rec=$(wait_record "PORTCULLIS_CHAIN_ID=$SIGNED_CHAIN" PORTCULLIS_SOURCE=commit-event); then
  problems=()
  [[ $(jq -r .PORTCULLIS_SNAPSHOT_NAME <<<"$rec") == "$SIGNED_CHAIN" ]] || problems+=("snapshot name")
  [[ $(jq -r .PORTCULLIS_SNAPSHOT_KEY <<<"$rec") == "$KEY" ]] || problems+=("key")
  [[ $(jq -r .PORTCULLIS_SNAPSHOT_PARENT <<<"$rec") == "$UNSIGNED_CHAIN" ]] || problems+=("parent")
  [[ $(jq -r .PORTCULLIS_SNAPSHOTTER <<<"$rec") == overlayfs ]] || problems+=("snapshotter")
  [[ $(jq -r .PORTCULLIS_NAMESPACE <<<"$rec") == "$PC_NS" ]] || problems+=("namespace")
  [[ $(jq -r .PRIORITY <<<"$rec") == 3 ]] || problems+=("priority")
  reason=$(jq -r .PORTCULLIS_REASON <<<"$rec")
  grep -qF "committed from key \"$KEY\", not an unpack's" <<<"$reason" || problems+=("reason lacks the key: $reason")
  grep -qF "no layer blob in the content store has a verified diff ID" <<<"$reason" || problems+=("reason lacks the diff ID: $reason")
  if ((${#problems[@]})); then not_ok "squat: commit event record" "${problems[@]}" "$rec"; else
    ok "squat: commit event record names the snapshot, chain ID, key, parent and why"
    echo "# record: $(jq -c '{MESSAGE_ID,PRIORITY,MESSAGE,PORTCULLIS_KIND,PORTCULLIS_NAMESPACE,PORTCULLIS_SNAPSHOTTER,PORTCULLIS_SNAPSHOT_NAME,PORTCULLIS_CHAIN_ID,PORTCULLIS_SNAPSHOT_PARENT,PORTCULLIS_SNAPSHOT_KEY,PORTCULLIS_REASON,PORTCULLIS_SOURCE}' <<<"$rec")"
  fi
else
  not_ok "squat: commit event record" "no SNAPSHOT_SQUAT record for $SIGNED_CHAIN" "$(cat "$PC_WORK/logs/sync.log")"
fi

echo "# control: no record for the genuine unpacks (sync rechecked each commit for ~8 s by now)"
sleep 8
bad=()
for c in "$UNSIGNED_CHAIN" "${CONTROL_CHAINS[@]}"; do
  [[ -z $(squat_records "PORTCULLIS_CHAIN_ID=$c") ]] || bad+=("$c")
done
n=$(squat_records | grep -c . || true)
if ((${#bad[@]} == 0)) && [[ $n == 1 ]]; then
  ok "control: pulls of sq/unsigned and sq/control (${#CONTROL_CHAINS[@]} layers) produced no squat record; 1 record in all"
else
  not_ok "control: genuine unpacks flagged" "flagged: ${bad[*]}" "$n records in all"
fi

echo "# the signed image pulled now: containerd's unpack reuses the squat (the reason it must be reported)"
pc_pull sq/signed:v1 >/dev/null
parent=$(pc_ctr snapshots info "$SIGNED_CHAIN" | jq -r '.Parent // empty')
if [[ $parent == "$UNSIGNED_CHAIN" ]]; then
  ok "unpack of sq/signed kept the squatted snapshot (parent $parent): containerd cannot prevent it"
else
  not_ok "unpack reuse" "parent of $SIGNED_CHAIN is '$parent'"
fi

echo "# a restarted portcullis sync finds it in its start-up scan"
kill "$SYNC_PID"
wait "$SYNC_PID" 2>/dev/null || true
SYNC_PID=
start_sync 2
if rec=$(wait_record "PORTCULLIS_CHAIN_ID=$SIGNED_CHAIN" PORTCULLIS_SOURCE=start-up-scan); then
  reason=$(jq -r .PORTCULLIS_REASON <<<"$rec")
  if grep -qF "no layer blob in the content store has a verified diff ID" <<<"$reason" &&
    [[ -z $(jq -r '.PORTCULLIS_SNAPSHOT_KEY // empty' <<<"$rec") ]]; then
    ok "start-up scan: record for $SIGNED_CHAIN (no key known): $reason"
  else
    not_ok "start-up scan record" "$rec"
  fi
else
  not_ok "start-up scan record" "none" "$(cat "$PC_WORK/logs/sync.log")"
fi
n=$(squat_records PORTCULLIS_SOURCE=start-up-scan | grep -c . || true)
[[ $n == 1 ]] && ok "start-up scan: the genuine snapshots not flagged (1 scan record)" ||
  not_ok "start-up scan flags only the squat" "$n scan records"

echo "# $PASS passed, $FAIL failed"
((FAIL == 0))
