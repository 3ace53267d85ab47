#!/usr/bin/env bash
# Fault suite: the gate under failures of what it depends on, on the real
# containerd, runc, journald and docker-registry.
#
#   - journald stopped while containers start: verdicts stand, records spool
#     and are replayed, none lost (counted);
#   - containerd's API slow (SIGSTOP) or gone: the wrapper refuses within its
#     lookup deadline with a clear reason, and the bound is measured;
#   - state directory read-only or full: verdicts stay correct; an allowed
#     start that cannot be recorded anywhere is refused (enforce);
#   - journald down with the spool at its size limit: an allowed start is
#     refused with the fix, and nothing spooled is dropped;
#   - journald frozen (SIGSTOP) with its socket's queue full: a start, and
#     then `portcullis heartbeat`, are held at most the send deadline, their
#     records spooled, then replayed;
#   - kill -9 of `portcullis fetch` at random points: the cache stays
#     consistent (every entry parses and is filed under its own digest);
#   - 64 starts at once while fetch rewrites the cache: every verdict right;
#   - containerd restarted mid-run: enforcement continues.
#
# Stops and restarts the machine's journald (as suite.sh does): run it where
# that is allowed. TAP lines, then "N passed, N failed"; non-zero on failure.
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

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
SHIM="$PC_BIN_DIR/containerd-shim-portcullis-v2"
KEYS=$PC_WORK/keys
STATE=$PORTCULLIS_STATE_DIR
CACHE=$STATE/cache/sha256
SPOOL=$STATE/spool/journal.jsonl
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

# run_quiet IMAGE ID: one start through the gate; prints ctr's exit status.
run_quiet() {
  local rc=0
  timeout 120 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm \
    --runtime "$RUNTIME" "$R/$1" "$2" /bin/true >"$PC_WORK/logs/run-$2.log" 2>&1 || rc=$?
  echo "$rc"
}

journald_pid() { pgrep -x systemd-journal || pgrep -f /lib/systemd/systemd-journald | head -n 1; }
stop_journald() {
  local pid
  pid=$(journald_pid) || return 0
  kill "$pid"
  for _ in $(seq 1 50); do pgrep -x systemd-journal >/dev/null || return 0; sleep 0.1; done
  return 1
}
start_journald() { bash "$HERE/setup.sh" >/dev/null; }

# refuse_unrecorded NAME IMAGE PATTERN...: a start that must be refused with
# every PATTERN in the client's error, when nothing can record it (journald
# down, spool unwritable): there is no journal record to check, by design.
refuse_unrecorded() {
  local name=$1 image=$2 id rc out p problems=()
  shift 2
  id=$(new_id "$name")
  rc=$(run_quiet "$image" "$id")
  out=$(cat "$PC_WORK/logs/run-$id.log")
  ((rc != 0)) || problems+=("the container ran")
  for p in "portcullis: denied" "$@"; do
    grep -qF -- "$p" <<<"$out" || problems+=("lacks '$p': $out")
  done
  if ((${#problems[@]})); then not_ok "$name" "${problems[@]}"; else ok "$name (${*})"; fi
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
}

# direct_start ID [ADDRESS]: the wrapper's `start` as containerd runs it, but
# from here (so a stopped containerd cannot hang the client side). Sets
# DIRECT_RC, DIRECT_OUT and DIRECT_MS (wall time, measured, not asserted).
direct_start() {
  local id=$1 address=${2:-$PC_CONTAINERD_SOCK} t0 t1
  t0=$(date +%s%N)
  set +e
  DIRECT_OUT=$(cd "$PC_WORK" && timeout 60 env PATH="$PC_BIN_DIR:$PATH" "$SHIM" -namespace "$PC_NS" \
    -address "$address" -publish-binary /usr/bin/containerd -id "$id" start 2>&1)
  DIRECT_RC=$?
  set -e
  t1=$(date +%s%N)
  DIRECT_MS=$(((t1 - t0) / 1000000))
}

# cache_consistent: every entry parses as the gate reads it (strict JSON, its
# subject is the digest it is filed under); prints "entries temps" counts.
cache_consistent() {
  python3 - "$CACHE" <<'EOF'
import json, os, sys
d = sys.argv[1]
entries = temps = bad = 0
for name in sorted(os.listdir(d)):
    p = os.path.join(d, name)
    if name.startswith(".tmp-"):
        temps += 1
        continue
    if not name.endswith(".json"):
        print(f"stray file {name}", file=sys.stderr); bad += 1; continue
    try:
        e = json.load(open(p))
        assert e["subject"] == "sha256:" + name[:-5], "filed under another digest"
        assert e["format"] == 1
    except Exception as x:  # noqa: BLE001
        print(f"{name}: {x}", file=sys.stderr); bad += 1; continue
    entries += 1
print(entries, temps)
sys.exit(1 if bad else 0)
EOF
}

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

FROZEN_REGISTRY=
cleanup() {
  # Leave journald running and nothing mounted, whatever happened; set -e
  # must not cut this short, nor a cleanup failure change the verdict.
  local rc=$?
  set +e
  pc_exit_report "$rc"
  # (a journald left frozen by the frozen-journald case is resumed first,
  # and the registry the frozen-registry case left stopped)
  pkill -CONT -x systemd-journal 2>/dev/null
  [[ -n $FROZEN_REGISTRY ]] && kill -CONT "$FROZEN_REGISTRY" 2>/dev/null
  pgrep -x systemd-journal >/dev/null || start_journald
  mountpoint -q "$STATE" && umount "$STATE" 2>/dev/null
  pc_stop_all || echo "# cleanup of $PC_WORK failed (see pc: messages)" >&2
  exit "$rc"
}
trap cleanup EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$STATE"

echo "# images, signatures, policy"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub"
declare -A DIGEST
for spec in f/signed:1 f/unsigned:1 f/rewritten:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
  pc_pull "$spec" >/dev/null
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/f/signed:1" >/dev/null
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/f/rewritten:1" >/dev/null
"$PC" fetch --plain-http "$R/f/signed:1" >/dev/null 2>&1
"$PC" fetch --plain-http "$R/f/rewritten:1" >/dev/null 2>&1
write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "faults"
images = ["$R/f/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF
start_case control-signed-runs f/signed:1 run allow
start_case control-unsigned-refused f/unsigned:1 refuse deny "no signatures cached"

echo "# journald stopped while containers start: verdicts stand, records spool and are replayed"
stop_journald && ok "journald stopped" || not_ok "journald stopped"
rm -f "$SPOOL"
outage_ids=()
allowed=0
refused=0
for n in $(seq 1 6); do
  id=$(new_id outage-allow$n)
  outage_ids+=("$id")
  [[ $(run_quiet f/signed:1 "$id") == 0 ]] && allowed=$((allowed + 1))
done
for n in $(seq 1 4); do
  id=$(new_id outage-deny$n)
  outage_ids+=("$id")
  [[ $(run_quiet f/unsigned:1 "$id") != 0 ]] && grep -qF "portcullis: denied" "$PC_WORK/logs/run-$id.log" &&
    refused=$((refused + 1))
done
[[ $allowed -eq 6 && $refused -eq 4 ]] && ok "verdicts stand while journald is down (6 allowed, 4 refused)" ||
  not_ok "verdicts stand while journald is down" "allowed $allowed/6, refused $refused/4"
spooled=$(grep -c . "$SPOOL" 2>/dev/null || true)
[[ $spooled -eq 10 ]] && ok "10 records spooled" || not_ok "10 records spooled" "found $spooled"
start_journald
replay_out=$("$PC" journal replay --state-dir "$STATE" 2>&1) && rc=0 || rc=$?
lost=0
dup=0
for id in "${outage_ids[@]}"; do
  c=$(journal_count "$id")
  for _ in $(seq 1 30); do ((c >= 1)) && break; sleep 0.1; c=$(journal_count "$id"); done
  ((c == 0)) && lost=$((lost + 1))
  ((c > 1)) && dup=$((dup + 1))
done
((rc == 0 && lost == 0 && dup == 0)) && ok "all 10 spooled records replayed exactly once (lost 0, duplicated 0): $replay_out" ||
  not_ok "spooled records replayed" "rc=$rc lost=$lost dup=$dup: $replay_out"
[[ $(journal_field "${outage_ids[9]}" PORTCULLIS_SPOOLED) == 1 && $(journal_field "${outage_ids[9]}" PORTCULLIS_VERDICT) == deny ]] &&
  ok "a replayed denial keeps its verdict and is marked PORTCULLIS_SPOOLED=1" || not_ok "replayed denial record"
spool_left=$(grep -c . "$SPOOL" 2>/dev/null || true)
[[ ${spool_left:-0} -eq 0 ]] && ok "the spool is empty after the replay" || not_ok "spool empty after replay" "$spool_left lines left"
"$PC" journal replay --state-dir "$STATE" >/dev/null 2>&1
dup=0
for id in "${outage_ids[@]}"; do (($(journal_count "$id") > 1)) && dup=$((dup + 1)); done
((dup == 0)) && ok "a second replay duplicates nothing" || not_ok "second replay" "$dup duplicated"
echo "# figures: spooled $spooled, replayed $((${#outage_ids[@]} - lost)), lost $lost"

echo "# journald frozen (SIGSTOP) with its socket's queue full: the start waits at most the send deadline; the record is spooled, then replayed"
rm -f "$SPOOL"
jpid=$(journald_pid)
kill -STOP "$jpid"
# Fill the native socket's queue (net.unix.max_dgram_qlen datagrams) so that
# the next blocking send blocks, as on a node whose journald hangs.
queued=$(python3 - <<'PY'
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setblocking(False)
n = 0
while n < 1_000_000:
    try:
        s.sendto(b"MESSAGE=portcullis faults.sh: filler while journald is stopped\n", "/run/systemd/journal/socket")
    except BlockingIOError:
        break
    n += 1
print(n)
PY
)
probe=$(timeout 5 python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"MESSAGE=probe\n", "/run/systemd/journal/socket")' >/dev/null 2>&1 && echo sent || echo blocked)
fid=$(new_id frozen-allow)
t0=$(date +%s%N)
frc=$(run_quiet f/signed:1 "$fid")
t1=$(date +%s%N)
# An operator tool, still frozen: `portcullis heartbeat` sends under the same
# deadline (a timer aimed at the sending thread), so it ends and spools.
hrc=0
timeout 60 "$PC" heartbeat >/dev/null 2>&1 || hrc=$?
t2=$(date +%s%N)
kill -CONT "$jpid"
echo "# figures: $queued datagrams queued, a blocking send then $probe; the start took $(((t1 - t0) / 1000000)) ms, heartbeat $(((t2 - t1) / 1000000)) ms (send deadline PORTCULLIS_JOURNALD_TIMEOUT_MS, default 2000)"
((hrc == 0)) && grep -q "\"$PC_MID_HEARTBEAT\"" "$SPOOL" 2>/dev/null &&
  ok "frozen-journald-tool-not-held: portcullis heartbeat ends in $(((t2 - t1) / 1000000)) ms and its record is spooled" ||
  not_ok "frozen-journald-tool-not-held" "heartbeat rc=$hrc (124: held past the 60 s guard); spool: $(tail -c 400 "$SPOOL" 2>/dev/null)"
[[ $probe == blocked ]] && ok "with journald stopped and $queued datagrams queued, a plain blocking send blocks (5 s probe)" ||
  not_ok "the frozen journald blocks a plain send" "probe: $probe after $queued datagrams"
[[ $frc == 0 ]] && grep -qF "\"$fid\"" "$SPOOL" 2>/dev/null &&
  ok "frozen-journald-start-not-held: the signed start runs, and its record is spooled" ||
  not_ok "frozen-journald-start-not-held" "ctr rc=$frc (124: held past the 120 s guard); spool: $(grep -F "$fid" "$SPOOL" 2>/dev/null | head -c 600)"
replay_out=$("$PC" journal replay --state-dir "$STATE" 2>&1) && rc=0 || rc=$?
c=$(journal_count "$fid")
for _ in $(seq 1 50); do ((c >= 1)) && break; sleep 0.1; c=$(journal_count "$fid"); done
why=$(journal_field "$fid" PORTCULLIS_SPOOL_REASON || true)
((rc == 0 && c == 1)) && [[ $(journal_field "$fid" PORTCULLIS_VERDICT || true) == allow && $why == "journald did not take the record within"* ]] &&
  ok "resumed: the spooled allow record is replayed exactly once, saying why it waited: ${why:0:120}" ||
  not_ok "frozen-journald record replayed" "rc=$rc count=$c reason '$why': $replay_out"

echo "# containerd's API slow (stopped with SIGSTOP): refused within the lookup deadline"
cpid=$(cat "$PC_WORK/run/containerd.pid")
kill -STOP "$cpid"
# A fresh ID: test-all.sh runs this suite twice, and the record looked up
# below must be this run's.
slow_id=$(new_id slow)
direct_start "$slow_id"
kill -CONT "$cpid"
echo "# figure: refusal with containerd stopped took ${DIRECT_MS} ms (deadline PORTCULLIS_CONTAINERD_TIMEOUT_MS, default 5000)"
((DIRECT_RC != 0 && DIRECT_RC != 124)) && grep -qF "portcullis: denied" <<<"$DIRECT_OUT" && grep -qiF "containerd" <<<"$DIRECT_OUT" &&
  ok "a stopped containerd is refused, not waited on: ${DIRECT_OUT:0:160}" ||
  not_ok "stopped containerd refused" "rc=$DIRECT_RC (124 = hung past the 60 s guard) $DIRECT_OUT"
[[ $(journal_field "$slow_id" PORTCULLIS_VERDICT || true) == deny ]] && ok "the timeout denial is recorded" ||
  not_ok "the timeout denial is recorded"
kill -STOP "$cpid"
PORTCULLIS_CONTAINERD_TIMEOUT_MS=1000 direct_start "$(new_id slow)"
kill -CONT "$cpid"
echo "# figure: with PORTCULLIS_CONTAINERD_TIMEOUT_MS=1000 the refusal took ${DIRECT_MS} ms"
((DIRECT_RC != 0 && DIRECT_RC != 124)) && grep -qF "1000" <<<"$DIRECT_OUT" &&
  ok "the deadline is the configured one and the reason names it" || not_ok "configured deadline" "rc=$DIRECT_RC $DIRECT_OUT"

echo "# the wrapper started without its containerd arguments: refused, never passed through"
set +e
out=$(cd "$PC_WORK" && timeout 60 env PATH="$PC_BIN_DIR:$PATH" "$SHIM" start 2>&1)
rc=$?
set -e
((rc != 0 && rc != 124)) && grep -qF "portcullis: denied" <<<"$out" && grep -qF -- "-namespace, -id and -address" <<<"$out" &&
  ok "a start without -namespace/-id/-address is refused: ${out:0:140}" || not_ok "incomplete shim arguments refused" "rc=$rc $out"

echo "# containerd gone, then restarted mid-run: enforcement continues"
id=$(new_id survivor)
pc_ctr run -d --runtime "$RUNTIME" "$R/f/signed:1" "$id" /bin/busybox sleep 120 >/dev/null
pc_stop_containerd
direct_start "$(new_id gone)"
((DIRECT_RC != 0)) && grep -qF "unreachable" <<<"$DIRECT_OUT" &&
  ok "containerd gone: refused in ${DIRECT_MS} ms: ${DIRECT_OUT:0:160}" || not_ok "containerd gone refused" "rc=$DIRECT_RC $DIRECT_OUT"
pc_start_containerd
grep -qx "$id" <<<"$(pc_ctr tasks ls -q)" && ok "a task started before the restart still runs" || not_ok "task survives the restart"
start_case after-restart-signed-runs f/signed:1 run allow
start_case after-restart-unsigned-refused f/unsigned:1 refuse deny "no signatures cached"
pc_ctr tasks kill -s KILL "$id" >/dev/null 2>&1 || true
for _ in $(seq 1 50); do pc_ctr tasks delete "$id" >/dev/null 2>&1 && break; sleep 0.1; done
pc_ctr containers rm "$id" >/dev/null 2>&1 || true
# Restart in the middle of a burst of starts.
burst_ok=0
burst_n=8
pids=()
for n in $(seq 1 "$burst_n"); do
  (
    if ((n % 2)); then img=f/signed:1 want=0; else img=f/unsigned:1 want=1; fi
    for attempt in 1 2 3; do
      # A start racing the restart may fail inside containerd (not at the
      # gate): retry under a new container ID, as a client would.
      id=$(new_id "burst$n-$attempt")
      rc=$(run_quiet "$img" "$id")
      pc_ctr containers rm "$id" >/dev/null 2>&1 || true
      denied=0
      grep -qF "portcullis: denied" "$PC_WORK/logs/run-$id.log" && denied=1 && break
      ((rc == 0)) && break
      sleep 1
    done
    # Right: a signed image ran (never denied); an unsigned one was denied by
    # the gate (never ran).
    ((want == 0 && rc == 0 && denied == 0 || want == 1 && rc != 0 && denied == 1)) &&
      touch "$PC_WORK/burst-ok-$n"
  ) &
  pids+=($!)
  if ((n == burst_n / 2)); then
    pc_stop_containerd && pc_start_containerd || not_ok "containerd restarted in the middle of the burst"
  fi
done
wait "${pids[@]}" || true
burst_ok=$(find "$PC_WORK" -maxdepth 1 -name 'burst-ok-*' | wc -l)
((burst_ok == burst_n)) && ok "starts across a containerd restart: $burst_ok/$burst_n verdicts right" ||
  not_ok "starts across a containerd restart" "$burst_ok/$burst_n right"

echo "# state directory read-only (bind mount)"
mount --bind "$STATE" "$STATE"
mount -o remount,bind,ro "$STATE"
touch "$STATE/probe" 2>/dev/null && not_ok "state directory is read-only" || ok "state directory is read-only"
# The verdict cache must not mask a re-verification: a fresh entry forces one.
start_case read-only-state-signed-runs f/signed:1 run allow
start_case read-only-state-unsigned-refused f/unsigned:1 refuse deny "no signatures cached"
stop_journald
refuse_unrecorded read-only-state-and-no-journald-refuses-unrecordable-start f/signed:1 \
  "free or fix the state directory" "Read-only file system"
refuse_unrecorded read-only-state-and-no-journald-unsigned-keeps-its-reason f/unsigned:1 "no signatures cached"
start_journald
umount "$STATE"

echo "# state directory full (small tmpfs, filled)"
cp -a "$STATE" "$PC_WORK/state.saved"
mount -t tmpfs -o size=4m tmpfs "$STATE"
cp -a "$PC_WORK/state.saved/." "$STATE/"
rm -rf "$STATE/verdicts"
dd if=/dev/zero of="$STATE/filler" bs=64k 2>/dev/null || true
avail=$(df --output=avail -B1 "$STATE" | tail -n 1 | tr -d ' ')
[[ $avail -lt 65536 ]] && ok "state directory full (${avail} bytes free)" || not_ok "state directory full" "$avail free"
start_case full-state-signed-runs f/signed:1 run allow
start_case full-state-unsigned-refused f/unsigned:1 refuse deny "no signatures cached"
stop_journald
refuse_unrecorded full-state-and-no-journald-refuses-unrecordable-start f/signed:1 \
  "f/signed:1@sha256:" "free or fix the state directory" "No space left on device"
refuse_unrecorded full-state-and-no-journald-unsigned-keeps-its-reason f/unsigned:1 "no signatures cached"
start_journald
umount "$STATE"
rm -rf "$PC_WORK/state.saved"

echo "# journald down and the spool at its size limit: the start is refused, nothing spooled is lost"
# journal::MAX_SPOOL_BYTES (64 MiB): filled with well-formed filler records
# to within 100 bytes of it, so the next verdict record (2 KB) does not fit.
SPOOL=$STATE/spool/journal.jsonl
mkdir -p "$STATE/spool"
python3 - "$SPOOL" $((64 * 1024 * 1024 - 100)) <<'EOF'
import json, sys
path, size = sys.argv[1], int(sys.argv[2])
line = (json.dumps({"message": "faults.sh filler", "priority": 6, "fields": [["PORTCULLIS_FILLER", "x" * 900]]}) + "\n").encode()
with open(path, "wb") as f:
    n = size // len(line)
    f.write(line * n)
    f.write(b"\n" * (size - n * len(line)))
EOF
spool_sum=$(sha256sum <"$SPOOL")
stop_journald
refuse_unrecorded spool-full-and-no-journald-refuses-unrecordable-start f/signed:1 \
  "f/signed:1@sha256:" "is full" "start systemd-journald, then run \`portcullis journal replay\`"
refuse_unrecorded spool-full-and-no-journald-unsigned-keeps-its-reason f/unsigned:1 "no signatures cached"
[[ $(sha256sum <"$SPOOL") == "$spool_sum" ]] && ok "the full spool is left as it was (nothing dropped to make room)" ||
  not_ok "the full spool is left as it was" "$(stat -c %s "$SPOOL") bytes"
# the filler is not replayed into the machine's journal
rm -f "$SPOOL"
start_journald

echo "# kill -9 of portcullis fetch at random points: the cache stays consistent"
t0=$(date +%s%N)
"$PC" fetch --plain-http "$R/f/rewritten:1" >/dev/null 2>&1
fetch_ms=$((($(date +%s%N) - t0) / 1000000))
echo "# figure: one complete fetch takes ${fetch_ms} ms; kills land uniformly in 0..$((fetch_ms * 5 / 4)) ms"
kills=25
killed=0
for n in $(seq 1 "$kills"); do
  "$PC" fetch --plain-http "$R/f/rewritten:1" >/dev/null 2>&1 &
  fpid=$!
  delay=$((RANDOM * 32768 + RANDOM))
  delay=$((delay % (fetch_ms * 5 / 4 + 1)))
  sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
  kill -KILL "$fpid" 2>/dev/null && killed=$((killed + 1))
  wait "$fpid" 2>/dev/null || true
done
counts=$(cache_consistent) && rc=0 || rc=$?
((rc == 0)) && ok "after $kills fetches killed at random points ($killed killed before they finished, the rest completed): every entry parses, filed under its digest (entries/temp files: $counts)" ||
  not_ok "cache consistent after kill -9" "$counts"
start_case after-kills-rewritten-runs f/rewritten:1 run allow
echo "# figure: temporary files left by killed fetches: ${counts#* }"

echo "# 64 starts at once while fetch rewrites the cache"
(
  while [[ ! -e $PC_WORK/stop-rewriting ]]; do
    "$PC" fetch --plain-http "$R/f/signed:1" >/dev/null 2>&1 || true
    "$PC" fetch --plain-http "$R/f/unsigned:1" >/dev/null 2>&1 || true
  done
) &
rewriter=$!
before=$(stat -c %Y "$CACHE/${DIGEST[f/signed:1]#sha256:}.json")
ids=()
pids=()
for n in $(seq 1 64); do
  id=$(new_id storm$n)
  ids+=("$id")
  if ((n % 2)); then img=f/signed:1; else img=f/unsigned:1; fi
  (echo "$img $(run_quiet "$img" "$id")" >"$PC_WORK/storm-$id") &
  pids+=($!)
done
wait "${pids[@]}" || true
touch "$PC_WORK/stop-rewriting"
wait "$rewriter" || true
right=0
wrong=()
for id in "${ids[@]}"; do
  read -r img rc <"$PC_WORK/storm-$id"
  verdict=$(journal_field "$id" PORTCULLIS_VERDICT || echo none)
  if [[ $img == f/signed:1 ]]; then
    [[ $rc == 0 && $verdict == allow ]] && right=$((right + 1)) || wrong+=("$id:$img:rc=$rc:$verdict")
  else
    [[ $rc != 0 && $verdict == deny ]] && grep -qF "no signatures cached" "$PC_WORK/logs/run-$id.log" &&
      right=$((right + 1)) || wrong+=("$id:$img:rc=$rc:$verdict")
  fi
done
after=$(stat -c %Y "$CACHE/${DIGEST[f/signed:1]#sha256:}.json")
((right == 64)) && ok "64 concurrent starts under cache rewrites: 64/64 verdicts right (32 allowed, 32 refused)" ||
  not_ok "64 concurrent starts" "$right/64 right; wrong: ${wrong[*]}"
[[ $after != "$before" ]] && ok "the cache entry was rewritten during the storm" || not_ok "cache rewritten during the storm"

echo "# the registry frozen (SIGSTOP): fetch gives up (READ_TIMEOUT 30 s), the cache is untouched"
# The suite's docker-registry, stopped: the kernel still completes the TCP
# handshake into its listen backlog and takes the request into the socket
# buffer, and nothing answers, as from a registry that accepts and hangs.
# Resumed below, or by the EXIT trap on any other way out.
before=$(cat "$CACHE"/*.json | sha256sum)
FROZEN_REGISTRY=$(cat "$PC_WORK/run/registry.pid")
kill -STOP "$FROZEN_REGISTRY"
t0=$SECONDS
out=$(timeout 200 "$PC" fetch --plain-http "$R/f/signed:1" 2>&1) && rc=0 || rc=$?
silent_s=$((SECONDS - t0))
kill -CONT "$FROZEN_REGISTRY"
FROZEN_REGISTRY=
echo "# figure: fetch from the frozen registry gave up after $silent_s s"
((rc != 0 && rc != 124)) && [[ $(cat "$CACHE"/*.json | sha256sum) == "$before" ]] &&
  ok "fetch from a silent registry fails on its own, cache unchanged: ${out:0:160}" ||
  not_ok "fetch from a silent registry" "rc=$rc (124 = still waiting after 200 s) $out"

summary
