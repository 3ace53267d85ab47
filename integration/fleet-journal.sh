#!/usr/bin/env bash
# The central journal on real parts: verdict records forwarded by Debian's
# systemd-journal-upload to a systemd-journal-remote collector on loopback,
# then read back from the collector's journal files by `portcullis audit`
# (node column, --node, denials per node, heartbeat stopped) and
# `portcullis evidence --directory`.
#
# Node A is this machine: real gate decisions (the shim on a private
# containerd 1.6, the machine's journald), uploaded by `systemd-journal-upload
# --follow` from the system journal after a cursor taken at the start. Some of
# node A's verdicts are spooled (the shim runs in a mount namespace where
# journald's socket is hidden) and replayed by `portcullis journal replay`.
# Node B is a second journal file written by a real journal writer
# (systemd-journal-remote reading `journalctl -o export` of node A's records
# with _HOSTNAME=node-b, its heartbeat two hours old), uploaded with
# `systemd-journal-upload --file`. The uploading and collecting are done by
# systemd's daemons only.
#
# Env: PC_WORK, PC_REGISTRY (as every suite), PC_JOURNAL_REMOTE_PORT
# (default 5342). Ends with "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"
R=$PC_REGISTRY
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
KEYS=$PC_WORK/keys
PORT=${PC_JOURNAL_REMOTE_PORT:-5342}
URL=http://127.0.0.1:$PORT
REMOTE=/lib/systemd/systemd-journal-remote
UPLOAD=/lib/systemd/systemd-journal-upload
COLLECTOR=$PC_WORK/collector
WRAP=$PC_WORK/shim-wrap
NOJOURNAL=$PC_WORK/hide-journald
HEARTBEAT_ID=43854a3b0232701f13a057de7bb8bcd5
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

for b in "$REMOTE" "$UPLOAD"; do
  [[ -x $b ]] || { echo "fleet-journal: $b missing: run integration/setup.sh (package systemd-journal-remote)" >&2; exit 1; }
done

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

REMOTE_PID=
UPLOAD_PID=
stop_pid() { [[ -n ${1:-} ]] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
trap 'rc=$?; set +e; stop_pid "$UPLOAD_PID"; stop_pid "$REMOTE_PID"; pc_stop_all || echo "# cleanup of $PC_WORK failed" >&2; exit $rc' EXIT
mkdir -p "$PC_WORK"
pc_start_registry

# The shim, wrapped: while $NOJOURNAL exists it runs in its own mount
# namespace where /run/systemd/journal is an empty tmpfs, so journald cannot
# take its records and they spool. Everything else is the real shim.
rm -rf "$WRAP"
mkdir -p "$WRAP"
cat >"$WRAP/containerd-shim-portcullis-v2" <<EOF
#!/bin/sh
if [ -e "$NOJOURNAL" ]; then
  exec unshare --mount --propagation private sh -c 'mount -t tmpfs -o size=64k portcullis-nojournal /run/systemd/journal && exec "\$0" "\$@"' "$PC_BIN_DIR/containerd-shim-portcullis-v2" "\$@"
fi
exec "$PC_BIN_DIR/containerd-shim-portcullis-v2" "\$@"
EOF
chmod 0755 "$WRAP/containerd-shim-portcullis-v2"
rm -f "$NOJOURNAL"
export PC_CONTAINERD_PATH_PREPEND=$WRAP
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR" "$PC_WORK/logs"

echo "# keys, images, signatures"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
for spec in fj/signed:v1 fj/unsigned:v1; do
  pc_push_image "$spec" "${spec//[:\/]/-}" >/dev/null
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/fj/signed:v1" >/dev/null
for spec in fj/signed:v1 fj/unsigned:v1; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true
done
write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "fj"
images = ["$R/fj/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF

echo "# the collector: systemd-journal-remote --listen-http=127.0.0.1:$PORT"
rm -rf "$COLLECTOR"
mkdir -p "$COLLECTOR"
"$REMOTE" --listen-http="127.0.0.1:$PORT" --output="$COLLECTOR/" >"$PC_WORK/logs/journal-remote.log" 2>&1 &
REMOTE_PID=$!
for _ in $(seq 1 50); do
  ss -ltnH "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
ss -ltnH "sport = :$PORT" | grep -q . && ok "collector listens on 127.0.0.1:$PORT" ||
  not_ok "collector listens" "$(cat "$PC_WORK/logs/journal-remote.log")"

echo "# node A uploads its system journal from now on: systemd-journal-upload --follow"
T0=$(date +%s)
C0=$(journalctl -n 0 --show-cursor -q --no-pager | sed -n 's/^-- cursor: //p')
[[ -n $C0 ]] || { echo "fleet-journal: no journal cursor" >&2; exit 1; }
STATE_A=$PC_WORK/upload-a.state
rm -f "$STATE_A"
"$UPLOAD" --url="$URL" --system --after-cursor="$C0" --save-state="$STATE_A" \
  >"$PC_WORK/logs/upload-a.log" 2>&1 &
UPLOAD_PID=$!

# in_collector ID [NODE]: records for container ID in the collector (on NODE).
in_collector() {
  journalctl --directory="$COLLECTOR" -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis \
    "PORTCULLIS_CONTAINER_ID=$1" ${2:+"_HOSTNAME=$2"} 2>/dev/null | grep -c . || true
}
# run_ctr ID IMAGE: sets RC.
run_ctr() {
  set +e
  timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm \
    --runtime io.containerd.portcullis.v2 "$R/$2" "$1" /bin/true >"$PC_WORK/logs/run-$1.log" 2>&1
  RC=$?
  set -e
  pc_ctr containers rm "$1" >/dev/null 2>&1 || true
}

"$PC" heartbeat >/dev/null && ok "node A: portcullis heartbeat recorded" || not_ok "node A heartbeat"

echo "# node A: real gate decisions (3 signed run, 3 unsigned refused)"
A_IDS=()
allowed=0
refused=0
LAT=()
for n in 1 2 3; do
  for kind in signed unsigned; do
    id=$(new_id "fj-$kind$n")
    A_IDS+=("$id")
    run_ctr "$id" "fj/$kind:v1"
    t0=$(date +%s%N)
    if [[ $kind == signed ]]; then ((RC == 0)) && allowed=$((allowed + 1)); else
      ((RC != 0)) && grep -qF "portcullis: denied" "$PC_WORK/logs/run-$id.log" && refused=$((refused + 1))
    fi
    # time from the decision's return to the record in the collector's files
    for _ in $(seq 1 300); do
      (($(in_collector "$id") >= 1)) && break
      sleep 0.05
    done
    (($(in_collector "$id") >= 1)) && LAT+=($((($(date +%s%N) - t0) / 1000000)))
  done
done
[[ $allowed -eq 3 && $refused -eq 3 ]] && ok "node A: 3 signed ran, 3 unsigned refused" ||
  not_ok "node A decisions" "allowed $allowed/3 refused $refused/3"
[[ ${#LAT[@]} -eq 6 ]] && ok "node A: each of the 6 records reached the collector while upload follows" ||
  not_ok "records reach the collector" "${#LAT[@]}/6 arrived; $(tail -n 5 "$PC_WORK/logs/upload-a.log")"
echo "# figures: decision -> collector (ms, ctr run return to record readable in the collector's files): ${LAT[*]}"

echo "# node A: journald unreachable for the shim (records spool), then portcullis journal replay"
SPOOL=$PORTCULLIS_STATE_DIR/spool/journal.jsonl
rm -f "$SPOOL"
touch "$NOJOURNAL"
S_IDS=()
for kind in signed unsigned signed unsigned; do
  id=$(new_id "fj-spool-$kind")
  S_IDS+=("$id")
  run_ctr "$id" "fj/$kind:v1"
done
rm -f "$NOJOURNAL"
spooled=$(grep -c . "$SPOOL" 2>/dev/null || true)
local_before=0
for id in "${S_IDS[@]}"; do local_before=$((local_before + $(journal_count "$id"))); done
[[ ${spooled:-0} -eq 4 && $local_before -eq 0 ]] && ok "4 verdicts spooled, none in journald yet" ||
  not_ok "verdicts spooled" "spool lines ${spooled:-0}, journald records $local_before"
replay=$("$PC" journal replay --state-dir "$PORTCULLIS_STATE_DIR" 2>&1) && ok "journal replay: $replay" ||
  not_ok "journal replay" "$replay"
A_IDS+=("${S_IDS[@]}")

echo "# every node A record arrives exactly once"
for _ in $(seq 1 100); do
  missing=0
  for id in "${A_IDS[@]}"; do (($(in_collector "$id") >= 1)) || missing=$((missing + 1)); done
  ((missing == 0)) && break
  sleep 0.1
done
# exact_once NODE IDS...: prints "arrived lost duplicated", counted by
# (PORTCULLIS_CONTAINER_ID, PORTCULLIS_DECIDED_AT) against the local journal.
exact_once() {
  local node=$1 id arrived=0 lost=0 dup=0 want got
  shift
  for id in "$@"; do
    want=$(journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis "PORTCULLIS_CONTAINER_ID=$id" |
      jq -r '.PORTCULLIS_DECIDED_AT' | sort | tr '\n' ' ')
    got=$(journalctl --directory="$COLLECTOR" -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis \
      "PORTCULLIS_CONTAINER_ID=$id" "_HOSTNAME=$node" | jq -r '.PORTCULLIS_DECIDED_AT' | sort | tr '\n' ' ')
    if [[ $got == "$want" && -n $want ]]; then
      arrived=$((arrived + 1))
    elif [[ -z $got ]]; then
      lost=$((lost + 1))
    else
      dup=$((dup + 1))
    fi
  done
  echo "$arrived $lost $dup"
}
NODE_A=$(hostname)
read -r arrived lost dup < <(exact_once "$NODE_A" "${A_IDS[@]}")
((arrived == 10 && lost == 0 && dup == 0)) &&
  ok "node A ($NODE_A): 10 sent, 10 arrived once each (lost 0, duplicated 0) by container id + decided_at" ||
  not_ok "node A exactly once" "arrived $arrived lost $lost dup $dup"
sp=0
for id in "${S_IDS[@]}"; do
  [[ $(journalctl --directory="$COLLECTOR" -o json --no-pager -q "PORTCULLIS_CONTAINER_ID=$id" |
    jq -r .PORTCULLIS_SPOOLED) == 1 ]] && sp=$((sp + 1))
done
((sp == 4)) && ok "the 4 replayed records arrive once each, marked PORTCULLIS_SPOOLED=1" || not_ok "spooled records arrive" "$sp/4"

hb_a=$(journalctl --directory="$COLLECTOR" -o json -q --no-pager "MESSAGE_ID=$HEARTBEAT_ID" "_HOSTNAME=$NODE_A" \
  "PORTCULLIS_POLICY_PATH=$PORTCULLIS_POLICY" | grep -c . || true)
((hb_a >= 1)) && ok "node A's heartbeat reached the collector ($hb_a)" || not_ok "node A heartbeat forwarded" "none"
echo "# upload restarted from its saved state: nothing sent twice"
stop_pid "$UPLOAD_PID"
UPLOAD_PID=
"$PC" journal replay --state-dir "$PORTCULLIS_STATE_DIR" >/dev/null 2>&1
grep -q LAST_CURSOR "$STATE_A" && ok "upload saved its cursor" || not_ok "upload state" "$(cat "$STATE_A" 2>&1)"
timeout 5 "$UPLOAD" --url="$URL" --system --save-state="$STATE_A" >>"$PC_WORK/logs/upload-a.log" 2>&1 || true
read -r arrived lost dup < <(exact_once "$NODE_A" "${A_IDS[@]}")
# systemd-journal-upload resends what followed its last saved cursor: the
# collector may hold a record twice (a figure, not hidden); audit counts it once.
echo "# figures: after the upload restart the collector's raw files hold $arrived of 10 once, $dup twice or more, $lost lost"
((lost == 0)) && ok "after an upload restart and a second replay: none of the 10 lost" ||
  not_ok "nothing lost after restart" "arrived $arrived lost $lost dup $dup"
ids_json=$(printf '%s\n' "${A_IDS[@]}" | jq -R . | jq -s .)
c=$("$PC" audit --directory "$COLLECTOR" --json --node "$NODE_A" |
  jq --argjson ids "$ids_json" '[.[] | select(.container_id as $c | $ids | index($c))] | length')
[[ $c -eq 10 ]] && ok "audit --node $NODE_A counts the 10 verdicts once each ($dup raw duplicate(s) from the restart dropped)" ||
  not_ok "audit counts once" "$c"

echo "# node B: a second journal file (real writer: systemd-journal-remote), uploaded with --file"
mkdir -p "$PC_WORK/node-b"
rm -f "$PC_WORK/node-b/node-b.journal"
OLD_US=$(($(date +%s%6N) - 2 * 3600 * 1000000))
# Only our records are exported (journalctl matches: our container ids, or
# our heartbeat), so no other record's binary fields reach the rewrite.
id_matches=()
for id in "${A_IDS[@]}"; do id_matches+=("PORTCULLIS_CONTAINER_ID=$id"); done
journalctl -o export --no-pager --since="@$T0" SYSLOG_IDENTIFIER=portcullis _UID=0 "${id_matches[@]}" \
  + SYSLOG_IDENTIFIER=portcullis _UID=0 "MESSAGE_ID=$HEARTBEAT_ID" "PORTCULLIS_POLICY_PATH=$PORTCULLIS_POLICY" |
  awk -v hb="MESSAGE_ID=$HEARTBEAT_ID" -v old="$OLD_US" '
    # one export entry per paragraph: node-b, and its heartbeat two hours old
    BEGIN { RS = ""; ORS = "\n\n"; FS = "\n" }
    {
      beat = 0
      for (i = 1; i <= NF; i++) if ($i == hb) beat = 1
      out = ""
      for (i = 1; i <= NF; i++) {
        f = $i
        if (f ~ /^_HOSTNAME=/) f = "_HOSTNAME=node-b"
        if (beat && f ~ /^(__REALTIME_TIMESTAMP|_SOURCE_REALTIME_TIMESTAMP)=/) f = substr(f, 1, index(f, "=")) old
        out = out (i > 1 ? "\n" : "") f
      }
      print out
    }' >"$PC_WORK/node-b/export.txt"
"$REMOTE" --output="$PC_WORK/node-b/node-b.journal" - <"$PC_WORK/node-b/export.txt" \
  >"$PC_WORK/logs/journal-remote-b.log" 2>&1 && ok "node B's journal file written by systemd-journal-remote" ||
  not_ok "node B journal" "$(cat "$PC_WORK/logs/journal-remote-b.log")"
B_SENT=$(journalctl --file="$PC_WORK/node-b/node-b.journal" -o json -q --no-pager _HOSTNAME=node-b | grep -c . || true)
timeout 60 "$UPLOAD" --url="$URL" --follow=no --file="$PC_WORK/node-b/node-b.journal" >"$PC_WORK/logs/upload-b.log" 2>&1 &&
  ok "node B: systemd-journal-upload --file sent $B_SENT record(s)" || not_ok "node B upload" "$(cat "$PC_WORK/logs/upload-b.log")"
for _ in $(seq 1 50); do
  (($(journalctl --directory="$COLLECTOR" -o json -q --no-pager _HOSTNAME=node-b | grep -c . || true) >= B_SENT)) && break
  sleep 0.1
done
B_GOT=$(journalctl --directory="$COLLECTOR" -o json -q --no-pager _HOSTNAME=node-b | grep -c . || true)
((B_SENT == 11 && B_GOT == B_SENT)) && ok "node B: 11 sent (10 verdicts + 1 heartbeat), $B_GOT arrived" ||
  not_ok "node B arrivals" "sent $B_SENT got $B_GOT"
read -r arrived lost dup < <(exact_once node-b "${A_IDS[@]}")
((arrived == 10 && lost == 0 && dup == 0)) && ok "node B: 10 verdicts once each by container id + decided_at" ||
  not_ok "node B exactly once" "arrived $arrived lost $lost dup $dup"
echo "# collector files: $(cd "$COLLECTOR" && ls)"

echo "# portcullis audit over the collector's directory"
a=$("$PC" audit --directory "$COLLECTOR" --json)
mine=$(jq --argjson ids "$ids_json" '[.[] | select(.container_id as $c | $ids | index($c))]' <<<"$a")
[[ $(jq '[.[] | select(.node == "node-b")] | length' <<<"$mine") -eq 10 &&
  $(jq --arg a "$NODE_A" '[.[] | select(.node == $a)] | length' <<<"$mine") -eq 10 ]] &&
  ok "audit --directory: 10 verdicts from $NODE_A and 10 from node-b, each with its node" ||
  not_ok "audit both nodes" "$(jq -c '[.[] | .node] | group_by(.) | map({(.[0]): length}) | add' <<<"$mine")"
b=$("$PC" audit --directory "$COLLECTOR" --json --node node-b)
[[ $(jq '[.[] | select(.node != "node-b")] | length' <<<"$b") -eq 0 && $(jq 'length' <<<"$b") -eq 10 ]] &&
  ok "audit --node node-b: only node-b's 10 verdicts" || not_ok "audit --node" "$(jq length <<<"$b")"
d=$("$PC" audit --directory "$COLLECTOR" --json --node node-b --verdict deny | jq length)
[[ $d -eq 5 ]] && ok "audit --node node-b --verdict deny: 5 denials" || not_ok "node-b denials" "$d"
n=$("$PC" audit --directory "$COLLECTOR" --nodes --json --stale-after 15m)
[[ $(jq '.[] | select(.node == "node-b") | [.verdicts, .denials, .heartbeat_stopped] == [10, 5, true]' <<<"$n") == true ]] &&
  ok "audit --nodes: node-b 10 verdicts, 5 denials, heartbeat stopped (2 h old, bound 15m)" ||
  not_ok "node-b summary" "$n"
[[ $(jq --arg a "$NODE_A" '.[] | select(.node == $a) | (.denials >= 5 and .heartbeat_stopped == false)' <<<"$n") == true ]] &&
  ok "audit --nodes: $NODE_A has >= 5 denials and a live heartbeat" || not_ok "node A summary" "$n"
t=$("$PC" audit --directory "$COLLECTOR" --stale-after 15m)
grep -q "heartbeat stopped on 1: node-b" <<<"$t" && grep -qE "^[0-9T:-]+ +node-b +deny " <<<"$t" &&
  ok "audit table: node column, and: $(grep 'heartbeat stopped on' <<<"$t")" ||
  not_ok "audit table" "$(tail -n 5 <<<"$t")"
echo "# $(grep '^node node-b' <<<"$t")"

echo "# portcullis evidence reads the collector's directory"
rm -rf "$PC_WORK/pack"
set +e
ev=$("$PC" evidence --directory "$COLLECTOR" --since 1h --out "$PC_WORK/pack" --address "$PC_CONTAINERD_SOCK" \
  --node fleet --this-policy-only 2>&1)
evrc=$?
set -e
if [[ -f $PC_WORK/pack/evidence.json ]] && grep -q "evidence pack" <<<"$ev"; then
  ok "evidence --directory <collector> writes a pack (exit $evrc): $(grep -o 'evidence pack.*' <<<"$ev" | head -n 1)"
else
  not_ok "evidence over the collector" "rc=$evrc: $ev"
fi
echo "# figures: node A sent 10 (4 of them spooled and replayed), node B sent $B_SENT; decision -> collector ms: ${LAT[*]}"
summary
