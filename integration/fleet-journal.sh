#!/usr/bin/env bash
# The central journal on real parts: verdict records forwarded by Debian's
# systemd-journal-upload to a systemd-journal-remote collector on loopback,
# then read back from the collector's journal files by `portcullis audit`
# (node column, --node, denials per node, heartbeat stopped) and
# `portcullis evidence --directory --fleet`: one pack for both nodes (node
# column, copies of a re-uploaded record counted once, heartbeats and
# coverage per node, re-verification from each node's state directory).
#
# Node A is this machine: real gate decisions (the shim on a private
# containerd 1.6, the machine's journald), uploaded by `systemd-journal-upload
# --follow` from the system journal after a cursor taken at the start. Some of
# node A's verdicts are spooled (the shim runs in a mount namespace where
# journald's socket is hidden) and replayed by `portcullis journal replay`.
# Node B is a second journal file written by a real journal writer
# (systemd-journal-remote reading `journalctl -o export` of node A's records
# with _HOSTNAME=node-b and its own _MACHINE_ID, its heartbeat two hours
# old), uploaded with `systemd-journal-upload --file`, then uploaded again
# (each node B record held twice by the collector). The uploading and
# collecting are done by systemd's daemons only.
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
HEARTBEAT_ID=$PC_MID_HEARTBEAT
NODE_B_MID=b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0
SCHEMA=$PC_REPO_ROOT/docs/evidence.schema.json
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

for b in "$REMOTE" "$UPLOAD"; do
  [[ -x $b ]] || { echo "fleet-journal: $b missing: run integration/setup.sh (package systemd-journal-remote)" >&2; exit 1; }
done

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

REMOTE_PID=
UPLOAD_PID=
stop_pid() { [[ -n ${1:-} ]] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
stop_journal_peers() { stop_pid "$UPLOAD_PID"; stop_pid "$REMOTE_PID"; }
trap 'pc_exit_trap $? stop_journal_peers' EXIT
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
HB_T=$(($(date +%s) + 1))
sleep 1

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
  awk -v hb="MESSAGE_ID=$HEARTBEAT_ID" -v old="$OLD_US" -v mid="$NODE_B_MID" '
    # one export entry per paragraph: node-b (its own machine ID), and its heartbeat two hours old
    BEGIN { RS = ""; ORS = "\n\n"; FS = "\n" }
    {
      beat = 0
      for (i = 1; i <= NF; i++) if ($i == hb) beat = 1
      out = ""
      for (i = 1; i <= NF; i++) {
        f = $i
        if (f ~ /^_HOSTNAME=/) f = "_HOSTNAME=node-b"
        if (f ~ /^_MACHINE_ID=/) f = "_MACHINE_ID=" mid
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

echo "# node B's file uploaded again (as after a restart without saved state): the collector holds each node B record twice"
timeout 60 "$UPLOAD" --url="$URL" --follow=no --file="$PC_WORK/node-b/node-b.journal" >>"$PC_WORK/logs/upload-b.log" 2>&1 ||
  not_ok "node B second upload" "$(tail -n 5 "$PC_WORK/logs/upload-b.log")"
for _ in $(seq 1 50); do
  (($(journalctl --directory="$COLLECTOR" -o json -q --no-pager _HOSTNAME=node-b | grep -c . || true) >= 2 * B_SENT)) && break
  sleep 0.1
done
B_RAW=$(journalctl --directory="$COLLECTOR" -o json -q --no-pager _HOSTNAME=node-b | grep -c . || true)
((B_RAW == 2 * B_SENT)) && ok "node B: the collector's files now hold $B_RAW records (each of $B_SENT twice)" ||
  not_ok "node B re-upload" "raw $B_RAW, sent $B_SENT"
c=$("$PC" audit --directory "$COLLECTOR" --json --node node-b | jq length)
((c == 10)) && ok "audit --node node-b still counts 10 verdicts (the one de-dup rule)" || not_ok "audit after re-upload" "$c"

echo "# one evidence pack for both nodes from the collector's journal: portcullis evidence --directory --fleet"
# The period starts after node A's heartbeat (which covers its start) and
# ends now; node B's heartbeat (two hours old) is outside it.
F=$PC_WORK/fleet-pack
rm -rf "$F"
set +e
ev=$("$PC" evidence --directory "$COLLECTOR" --fleet --from "@$HB_T" --to now --out "$F" \
  --address "$PC_CONTAINERD_SOCK" --this-policy-only --node-state "node-b=$PORTCULLIS_STATE_DIR" 2>&1)
evrc=$?
set -e
echo "$ev" | sed 's/^/#   /'
E=$F/evidence.json
if [[ -s $E && $(jq -r .format "$E") == portcullis-evidence-fleet/1 ]]; then
  ok "one fleet pack written (exit $evrc): $(head -n 1 <<<"$ev")"
else
  not_ok "fleet pack" "rc=$evrc: $ev"
  summary
  exit 1
fi
MID_A=$(cat /etc/machine-id)
nodes=$(jq -c '[.nodes[] | {node, machine_id}] | sort_by(.node)' "$E")
[[ $(jq length <<<"$nodes") -eq 2 &&
  $(jq -r --arg a "$NODE_A" --arg ma "$MID_A" --arg mb "$NODE_B_MID" \
    'map(select((.node == $a and .machine_id == $ma) or (.node == "node-b" and .machine_id == $mb))) | length' <<<"$nodes") -eq 2 ]] &&
  ok "node column: 2 nodes, grouped by _MACHINE_ID and named by _HOSTNAME: $nodes" || not_ok "fleet nodes" "$nodes"
node_dir() { jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .dir' "$2"; }
PA=$F/$(node_dir "$NODE_A" "$E")/evidence.json
PB=$F/$(node_dir node-b "$E")/evidence.json
# ours PACK: "records containers" of our containers' verdict records in a
# node pack (each record once: images' records, and denials of digests
# never allowed).
ours() {
  jq -r --argjson ids "$ids_json" '(.images | map(.digest)) as $imgs
    | ([.images[].records[]] + [.denials[] | select(.image_digest as $g | $imgs | index($g) | not)])
    | map(select(.container_id as $c | $ids | index($c)))
    | [length, (map(.container_id) | unique | length)] | map(tostring) | join(" ")' "$1"
}
na=$(ours "$PA")
nb=$(ours "$PB")
dup_b=$(jq '.nodes[] | select(.node == "node-b") | .duplicates_dropped' "$E")
dup_a=$(jq --arg a "$NODE_A" '.nodes[] | select(.node == $a) | .duplicates_dropped' "$E")
[[ $na == "10 10" && $nb == "10 10" ]] && ok "each node's 10 verdicts are in its own pack, once each (records, containers: $NODE_A $na, node-b $nb)" ||
  not_ok "verdicts per node" "$NODE_A: $na, node-b: $nb"
((dup_b == 11)) && ok "node-b: the 11 re-uploaded copies (10 verdicts, and its 2 h old heartbeat, the newest before the period) dropped, each record counted once" ||
  not_ok "node-b copies dropped" "$dup_b"
[[ $(jq length "$F/collector/duplicates.json") -eq $(jq .collector.duplicates_dropped "$E") ]] &&
  ok "collector/duplicates.json keeps the $(jq .collector.duplicates_dropped "$E") dropped copies ($NODE_A: $dup_a, from its upload restart)" ||
  not_ok "duplicates file" "$(jq -c .collector "$E")"
den_a=$(jq --arg a "$NODE_A" '.nodes[] | select(.node == $a) | .summary.denials' "$E")
[[ $(jq '.nodes[] | select(.node == "node-b") | .summary.denials' "$E") -eq 5 && $den_a -ge 5 ]] &&
  ok "denials per node: node-b 5, $NODE_A $den_a" ||
  not_ok "denials per node" "$(jq -c '[.nodes[] | {node, d: .summary.denials}]' "$E")"
hb=$(jq -c '[.nodes[] | {node, heartbeat_stopped, last_heartbeat}]' "$E")
[[ $(jq -r --arg a "$NODE_A" '.nodes[] | select(.node == $a) | .heartbeat_stopped' "$E") == false &&
  $(jq -r '.nodes[] | select(.node == "node-b") | .heartbeat_stopped' "$E") == true &&
  $(jq -r '.heartbeat_stopped | join(",")' "$E") == node-b ]] &&
  ok "heartbeat per node: $NODE_A live, node-b stopped: $hb" || not_ok "heartbeat per node" "$hb"
[[ $(jq '.heartbeats | length' "$PA") -ge 1 && $(jq '.inactive_periods | length' "$PA") -eq 0 &&
  $(jq '[.heartbeats[] | select(.time >= $p[0].period.from)] | length' --slurpfile p "$PB" "$PB") -eq 0 &&
  $(jq -r '[.inactive_periods[] | select((.reason | startswith("no heartbeat")) and .from == $p[0].period.from and .to == $p[0].period.to)] | length' --slurpfile p "$PB" "$PB") -eq 1 ]] &&
  ok "coverage per node: $NODE_A's heartbeat covers its period; node-b's only heartbeat is 2 h before it, its whole period uncovered (A's heartbeat is not B's)" ||
  not_ok "coverage per node" "A: $(jq -c '[(.heartbeats | length), .inactive_periods]' "$PA") B: $(jq -c '[(.heartbeats | length), .inactive_periods]' "$PB")"
re=$(jq -c '[.images[] | .reverification | select(. != null) | .signature.status] | unique' "$PB")
[[ $re == '["pass"]' ]] &&
  ok "node-b's images re-verified from its state directory (--node-state): $re" || not_ok "node-b re-verification" "$re"
[[ $(jq -r '.observation.containerd_error // ""' "$PB") == *"cannot be asked from here"* && $(jq '.observation.containers_examined' "$PA") != null ]] &&
  ok "containerd's records are read for this machine only; node-b's pack says why not" ||
  not_ok "containerd per node" "$(jq -c .observation.containerd_error "$PB")"
grep -q 'id="nodes"' "$F/report.html" && grep -qF ">node-b<" "$F/report.html" && grep -qF ">$NODE_A<" "$F/report.html" &&
  ok "report.html: the node table names both nodes" || not_ok "fleet report node table"
v=$("$PC" evidence verify "$F" 2>&1) && ok "evidence verify: $v" || not_ok "evidence verify of the fleet pack" "$v"
validate() {
  python3 - "$SCHEMA" "$1" <<'PYSCHEMA'
import json, sys
import jsonschema
errors = list(jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).iter_errors(json.load(open(sys.argv[2]))))
for e in errors[:5]:
    print("/".join(map(str, e.absolute_path)), e.message[:300])
sys.exit(1 if errors else 0)
PYSCHEMA
}
out=$(validate "$E" && validate "$PA" && validate "$PB" 2>&1) &&
  ok "the fleet pack and both node packs validate against docs/evidence.schema.json" || not_ok "schema" "$out"
# A changed statement is caught even with a re-made manifest.
T=$PC_WORK/fleet-tampered
rm -rf "$T"
cp -r "$F" "$T"
jq '(.nodes[] | select(.node == "node-b") | .heartbeat_stopped) = false | .heartbeat_stopped = []' "$F/evidence.json" >"$T/evidence.json"
(cd "$T" && find . -type f ! -name MANIFEST.sha256 | sed 's|^\./||' | sort | xargs sha256sum >MANIFEST.sha256)
set +e
tv=$("$PC" evidence verify "$T" 2>&1)
trc=$?
set -e
((trc == 1)) && grep -q "heartbeat-stopped flag differs" <<<"$tv" &&
  ok "evidence verify catches node-b's heartbeat flag changed (manifest re-made)" || not_ok "tamper caught" "rc=$trc $tv"

echo "# without the node's state directory: node-b's images are not re-verifiable here, never passed"
F2=$PC_WORK/fleet-pack-nostate
rm -rf "$F2"
"$PC" evidence --directory "$COLLECTOR" --fleet --from "@$HB_T" --to now --out "$F2" \
  --address "$PC_CONTAINERD_SOCK" --this-policy-only >/dev/null 2>&1 || true
PB2=$F2/$(node_dir node-b "$F2/evidence.json")/evidence.json
st=$(jq -c '[.images[] | .reverification | select(. != null) | .signature.status] | unique' "$PB2")
[[ $st == '["unavailable"]' && $(jq -r '.steps[] | select(.id == "signatures-reverified") | .status' "$PB2") == fail &&
  $(jq -r '.nodes[] | select(.node == "node-b") | .documents_from' "$F2/evidence.json") == none* ]] &&
  ok "node-b without --node-state: re-verification 'unavailable', its step fails, documents_from says the fix" ||
  not_ok "no state dir" "$st $(jq -c '.nodes[] | select(.node == "node-b") | .documents_from' "$F2/evidence.json")"
v=$("$PC" evidence verify "$F2" 2>&1) && ok "evidence verify of that pack: $v" || not_ok "verify of the pack without node-b's state" "$v"
echo "# figures: node A sent 10 (4 of them spooled and replayed), node B sent $B_SENT; decision -> collector ms: ${LAT[*]}"
summary
