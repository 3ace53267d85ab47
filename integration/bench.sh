#!/usr/bin/env bash
# Whole-start benchmark: `ctr run --rm` of a trivial signed image, each gate
# path against plain runc, interleaved A B B A ... on the same private
# containerd, so both see the same machine state.
#
# The gate paths (B), each against plain runc (A):
#   shim  the opt-in shim wrapper: `--runtime io.containerd.portcullis.v2`
#         vs `--runtime io.containerd.runc.v2`, on a containerd without the
#         runc gate (containerd 1.6). Key signature, key signature + SLSA
#         provenance, keyless signature (Fulcio certificate chain + Rekor
#         entry, from the local stand-in of integration/keyless).
#   node  node-wide: `ctr run` with no runtime flag on a containerd started
#         with a directory holding `runc -> portcullis-runc` first on its
#         PATH, so the runc shim runs the runc gate; containerd 1.6 and 2.4.2.
#   both  a start both gates see: `--runtime io.containerd.portcullis.v2` on
#         that same containerd (the shim wrapper, then the runc gate).
#   dense node-wide, warm, with 300 more overlay mounts on the node (the
#         rootfs mounts of that many running containers): the gate's read
#         of what is mounted at the rootfs must not grow with them.
#   null  plain runc against plain runc (`--runtime io.containerd.runc.v2`
#         both): what this machine's noise makes of two identical paths.
# The baseline of node and both is `ctr run --runc-binary <real runc>` on the
# same gated containerd: the runc shim then runs the real runc directly for
# every command (create, start, state, delete), so the pair differs only in
# the gate. (Two containerds would also differ in their metadata, caches and
# PATH; a baseline in between would not be interleaved.)
# Each case is cold (verdict cache, known chain IDs and compiled policy
# emptied before every gated start) and warm. Reports median and p95 wall time of each, the per-pair ratio B/A
# (median with a bootstrap 95 % interval of it, and p95),
# each gate's own CPU time (its verification child included) and peak
# memory per start (PORTCULLIS_RUSAGE_LOG, written just before each gate
# hands over: one line from the shim at `start`, one from the runc gate at
# `create`), where the shim's time goes (policy, lookup, verdict-cache key
# and read, sandboxed verification, journal; the runc gate logs its total
# only), N concurrent shim starts (cold and warm) with their error count, a
# lock sample (strace of sampled shim starts: flock/fcntl locks taken),
# gate processes left resident, and /proc/loadavg before and after.
#
#   bash integration/bench.sh [PAIRS]   full run (default 30 pairs, N = 16 and 64);
#                                       checks the issue's targets, exit 3 if one is missed
#   bash integration/bench.sh --smoke   2 pairs per case, N = 4 and 8, no target check,
#                                       debug build (CI: checks every case still runs)
#   PC_BENCH_BIN_DIR=DIR bash integration/bench.sh [PAIRS]
#                                       the gate binaries in DIR instead of a release build
#                                       of this tree (before/after comparisons)
#   PC_BENCH_CASES=CASE,... bash integration/bench.sh [PAIRS]
#                                       only those cases (names as in starts.md's JSON:
#                                       null-runc, node-prov-warm, node2-prov-warm, ...), and
#                                       none of the concurrency, lock, strace, callgrind and
#                                       perf sections: many pairs of a few cases, for a
#                                       ratio's interval narrower than the targets' margins
#   bash integration/bench.sh --policy-scale [RUNS]
#                                       the policy's cost alone at 10, 1,000 and 10,000
#                                       rules (below); no containerd, registry or root needed
#
# Run as root after setup.sh and tools.sh (and keyless/install.sh,
# attest/install.sh). Exit status: 0 ok, 1 a start failed or the set-up
# broke, 3 (full run only) all starts worked but a target was missed. Writes
# target/bench/starts.json and target/bench/starts.md (a smoke run:
# target/bench-smoke/). Timings are
# measurements, never assertions of the test suite.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
SMOKE=0
PAIRS=30
CONC=(16 64)
# PC_BENCH_CASES: a comma-separated subset of the cases; the sections that
# are not pairs (concurrency, locks, traces, profiles) then stay out.
FOCUS=${PC_BENCH_CASES:-}
EXTRAS=1
[[ -n $FOCUS ]] && EXTRAS=0
selected() { [[ -z $FOCUS || ",$FOCUS," == *",$1,"* ]]; }
KNOWN_CASES=(sig-cold sig-warm prov-cold prov-warm keyless-cold keyless-warm null-runc node-prov-cold
  node-prov-warm node-dense-warm both-prov-cold both-prov-warm node2-prov-cold node2-prov-warm)
for c in ${FOCUS//,/ }; do
  [[ " ${KNOWN_CASES[*]} " == *" $c "* ]] || {
    echo "usage: PC_BENCH_CASES takes a comma-separated list of: ${KNOWN_CASES[*]}" >&2
    exit 2
  }
done

# Policy scaling: what the policy costs a start, and `portcullis policy
# check`, as the number of rules grows (fleets write one rule per team or
# repository). Policies of 10, 1,000 and 10,000 rules, one per team, each
# with a key signer (the 10,000 fit under the 1 MiB policy limit). The
# start is the shim wrapper's `start` with nothing behind its containerd
# socket: the lookup fails at once and the start is refused, so what grows
# is the policy's load. Median wall time and the largest peak RSS
# (/usr/bin/time) over RUNS runs (default 5) of each; PC_BIN_DIR selects the
# binaries (default: a release build). Prints a table, also written to
# target/bench/policy-scale.md. A measurement, never an assertion.
policy_scale() {
  local runs=$1 dir n f cmd i t0 t1 rss wall_ms rss_max walls
  dir=$(mktemp -d /tmp/pc-policy-scale.XXXXXX)
  mkdir -p "$dir/state" "$ROOT/target/bench"
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout -out "$dir/k.pub" 2>/dev/null
  local out=("| rules | policy bytes | command | median wall (ms) | peak RSS (MiB) |" "|---|---|---|---|---|")
  for n in 10 1000 10000; do
    f=$dir/policy-$n.toml
    python3 - "$n" >"$f" <<'PY'
import sys
n = int(sys.argv[1])
print('mode = "enforce"\ndefault = "deny"')
for i in range(n):
    # the shapes fleets write: a team's repositories, a team's tree, one
    # repository, a repository prefix
    img = ["registry.example/t%d/*", "registry.example/t%d/**", "mirror.example/t%d/app", "registry.example/t%d/app-*"][i % 4] % i
    print(f'[[rule]]\nname = "t{i}"\nimages = ["{img}"]\nsigner = [{{ key = "k.pub" }}]')
PY
    # start: the first run parses the policy and writes its compiled form
    # (policy::compiled), the later ones read it; reported apart
    for cmd in check start-first start; do
      walls=() rss_max=0
      [[ $cmd == start-first ]] && rm -rf "$dir/state/policy-compiled"
      for i in $(seq 1 "$([[ $cmd == start-first ]] && echo 1 || echo "$runs")"); do
        t0=$(date +%s%N)
        if [[ $cmd == check ]]; then
          /usr/bin/time -f %M -o "$dir/rss" "$PC_BIN_DIR/portcullis" policy check "$f" >/dev/null || true
        else
          PORTCULLIS_POLICY=$f PORTCULLIS_STATE_DIR=$dir/state /usr/bin/time -f %M -o "$dir/rss" \
            "$PC_BIN_DIR/containerd-shim-portcullis-v2" -namespace bench -id scale \
            -address "$dir/no-containerd.sock" start >/dev/null 2>&1 || true
        fi
        t1=$(date +%s%N)
        walls+=("$(((t1 - t0) / 1000))")
        rss=$(tail -n 1 "$dir/rss")
        ((rss > rss_max)) && rss_max=$rss
      done
      wall_ms=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}')
      case $cmd in
      check) what='`portcullis policy check`' ;;
      start-first) what='shim `start`, lookup failing: first start (parse, compile)' ;;
      start) what='shim `start`, lookup failing: compiled policy' ;;
      esac
      out+=("| $n | $(stat -c %s "$f") | $what | $wall_ms | $(awk -v k="$rss_max" 'BEGIN {printf "%.1f", k/1024}') |")
    done
  done
  printf '%s\n' "${out[@]}" | tee "$ROOT/target/bench/policy-scale.md"
  rm -rf "$dir"
}
# The binaries as the package ships them: the CLI of a release build, the
# two start-path binaries statically linked (packaging/build-gates), side by
# side in target/bench/bin (PC_BIN_DIR).
release_bins() {
  (cd "$ROOT" && cargo build --release --quiet --bin portcullis && packaging/build-gates >/dev/null)
  PC_BIN_DIR=$ROOT/target/bench/bin
  mkdir -p "$PC_BIN_DIR"
  install -m 0755 "$ROOT/target/release/portcullis" "$ROOT"/target/start-path/* "$PC_BIN_DIR/"
}
case "${1:-}" in
--policy-scale)
  case "${2:-5}" in *[!0-9]* | 0) echo "usage: bench.sh --policy-scale [RUNS]" >&2 && exit 2 ;; esac
  if [[ -z ${PC_BIN_DIR:-} ]]; then
    release_bins
  fi
  policy_scale "${2:-5}"
  exit 0
  ;;
--smoke) SMOKE=1 PAIRS=2 CONC=(4 8) ;;
'') ;;
*[!0-9]* | 0) echo "usage: bench.sh [PAIRS | --smoke]" >&2 && exit 2 ;;
*) PAIRS=$1 ;;
esac
export PC_WORK=${PC_WORK:-/tmp/portcullis-bench}
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR
# journald up (and the packages in place): with journald down, every gated
# start would spool its record and replay the spool, and the figures would be
# those of that fault, not of a start.
bash "$HERE/setup.sh" >/dev/null

if ((SMOKE)); then
  # the smoke run checks that every case still works, not how fast: the
  # debug build CI already has will do
  echo "# building (debug, smoke run)"
  (cd "$ROOT" && cargo build --quiet --bins && cargo build --quiet -p portcullis-testsign)
  PC_BIN_DIR=$ROOT/target/debug
elif [[ -n ${PC_BENCH_BIN_DIR:-} ]]; then
  # other gate binaries (a before/after comparison): PC_BENCH_BIN_DIR=DIR
  echo "# gate binaries from $PC_BENCH_BIN_DIR"
  (cd "$ROOT" && cargo build --quiet -p portcullis-testsign)
  PC_BIN_DIR=$PC_BENCH_BIN_DIR
else
  echo "# building (release; the start-path binaries as packaged: packaging/build-gates)"
  release_bins
  (cd "$ROOT" && cargo build --quiet -p portcullis-testsign)
fi
SIGN=$ROOT/target/debug/portcullis-testsign
# a smoke run writes apart: it never replaces a measurement's report
OUT=$ROOT/target/bench
((SMOKE)) && OUT=$ROOT/target/bench-smoke
mkdir -p "$OUT"
rm -f "$OUT"/rusage-*.jsonl "$OUT"/wall-* "$OUT"/cpu-*

STANDIN_PID=
cleanup() {
  local rc=$?
  set +e
  pc_exit_report "$rc"
  [[ -n $STANDIN_PID ]] && kill "$STANDIN_PID" 2>/dev/null
  pc_stop_all || { echo "# cleanup of $PC_WORK failed (see pc: messages)" >&2; [[ $rc -ne 0 ]] || rc=1; }
  exit "$rc"
}
trap cleanup EXIT
pc_start_registry
pc_start_containerd
K=$PC_WORK/keys
KL=$PC_WORK/keyless
mkdir -p "$K" "$KL" "$PORTCULLIS_STATE_DIR" "$PC_WORK/logs"
"$SIGN" keygen --scheme ecdsa-p256 --private "$K/release.key" --public "$K/release.pub"
R=$PC_REGISTRY
sig_digest=$(pc_push_image bench/sig:1 bench-sig | tail -n 1)
prov_digest=$(pc_push_image bench/prov:1 bench-prov | tail -n 1)
kl_digest=$(pc_push_image bench/keyless:1 bench-keyless | tail -n 1)
"$SIGN" sign --plain-http --key "$K/release.key" "$R/bench/sig:1" >/dev/null
"$SIGN" sign --plain-http --key "$K/release.key" "$R/bench/prov:1" >/dev/null
bash "$HERE/attest/install.sh" >/dev/null
python3 "$HERE/attest/make_attestation.py" --key "$K/release.key" --subject-digest "$prov_digest" \
  --subject-name "$R/bench/prov" --predicate-version v1 --builder-id https://builder.example/slsa/v1 \
  --source-uri https://git.example/acme/app --out "$PC_WORK/att.json" >/dev/null
"$SIGN" attach-attestation --plain-http --envelope "$PC_WORK/att.json" "$R/bench/prov@$prov_digest" >/dev/null
# keyless: a Sigstore bundle (Fulcio-style certificate chain, Rekor entry)
# from the local stand-in, attached as a referrer; verified offline at start.
bash "$HERE/keyless/install.sh" >/dev/null
pc_start_standin "$KL"
KL_ID=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
KL_ISS=https://token.actions.githubusercontent.com
pc_manifest_raw bench/keyless:1 >"$KL/manifest"
pc_node "$HERE/keyless/sign-image.mjs" --standin-url "$STANDIN_URL" --artifact "$KL/manifest" \
  --digest "$kl_digest" --subject "$KL_ID" --issuer "$KL_ISS" --out "$KL/bundle.json" \
  --trusted-root-out "$KL/root.json" --extension repository=acme/app >/dev/null
"$SIGN" attach-bundle --plain-http --bundle "$KL/bundle.json" "$R/bench/keyless@$kl_digest" >/dev/null
kill "$STANDIN_PID" 2>/dev/null || true
wait "$STANDIN_PID" 2>/dev/null || true
STANDIN_PID=
for i in sig prov keyless; do
  pc_pull "bench/$i:1" >/dev/null
  "$PC_BIN_DIR/portcullis" fetch --plain-http "$R/bench/$i:1" >/dev/null
done
cat >"$PORTCULLIS_POLICY" <<EOF
mode = "enforce"
default = "deny"
[[rule]]
name = "sig"
images = ["$R/bench/sig"]
[[rule.signer]]
key = "$K/release.pub"
[[rule]]
name = "prov"
images = ["$R/bench/prov"]
[[rule.signer]]
key = "$K/release.pub"
[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]
source_uris = ["https://git.example/acme/*"]
[[rule]]
name = "keyless"
images = ["$R/bench/keyless"]
trust_root = "$KL/trusted_root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject_regex = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v.+"
[rule.signer.extensions]
github_workflow_repository = "acme/app"
EOF
# The lock sample's runtime: the same wrapper under strace (no -f: the
# wrapper itself, then the runc shim it execs).
mkdir -p "$PC_WORK/bin" "$PC_WORK/strace"
cat >"$PC_WORK/bin/containerd-shim-pcstrace-v2" <<EOF
#!/bin/sh
exec strace -qq -o "$PC_WORK/strace/\$\$.txt" -e trace=flock,fcntl,execve "$PC_BIN_DIR/containerd-shim-portcullis-v2" "\$@"
EOF
chmod +x "$PC_WORK/bin/containerd-shim-pcstrace-v2"
# The shim reads PORTCULLIS_RUSAGE_LOG from containerd's environment: restart
# containerd with it set.
pc_stop_containerd
export PORTCULLIS_RUSAGE_LOG=$PC_WORK/rusage.jsonl
PATH="$PC_BIN_DIR:$PC_WORK/bin:$PATH" pc_start_containerd

now_ns() { date +%s%N; }
# What a start costs the machine, beyond the gate's own CPU: every task's
# CPU time (the root cgroup's usage, cgroup v1 or v2; else /proc/stat's busy
# ticks), containerd's (all its threads; it answers the gate's lookup) and
# journald's (it records the gate's verdict), in ns, read around each start
# (by builtins, no fork) and kept as differences: the gated start's minus
# plain runc's is the gate's whole cost, wherever it is paid.
machine_ns() { # VAR
  local k v u n sy irq sirq
  if [[ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ]]; then
    read -r v </sys/fs/cgroup/cpuacct/cpuacct.usage
  elif [[ -r /sys/fs/cgroup/cpu.stat ]]; then
    while read -r k v; do [[ $k == usage_usec ]] && break; done </sys/fs/cgroup/cpu.stat
    v=$((v * 1000))
  else
    read -r _ u n sy _ _ irq sirq _ </proc/stat
    v=$(((u + n + sy + irq + sirq) * 1000000000 / CLK_TCK))
  fi
  printf -v "$1" %s "$v"
}
CLK_TCK=$(getconf CLK_TCK)
proc_ns() { # VAR PID: the process's CPU time, all its threads (schedstat)
  local t x s=0
  for t in /proc/"$2"/task/*/schedstat; do
    read -r x _ 2>/dev/null <"$t" && s=$((s + x))
  done
  printf -v "$1" %s "$s"
}
cpu_mark() { # VAR: "machine containerd journald" now
  local m c j
  machine_ns m
  proc_ns c "$CTRD_PID"
  proc_ns j "$JD_PID"
  printf -v "$1" '%s %s %s' "$m" "$c" "$j"
}
cpu_since() { # VAR MARK: "machine,containerd,journald" ns since MARK
  local m0 c0 j0 m1 c1 j1 now
  read -r m0 c0 j0 <<<"$2"
  cpu_mark now
  read -r m1 c1 j1 <<<"$now"
  printf -v "$1" '%s,%s,%s' $((m1 - m0)) $((c1 - c0)) $((j1 - j0))
}
# measured WALL_VAR CPU_VAR IMAGE [ctr run flags...]: run_once, its wall µs
# and its cpu_since differences into the two variables; fails as it fails
measured() {
  local mark wall
  cpu_mark mark
  wall=$(run_once "${@:3}") || return 1
  cpu_since "$2" "$mark"
  printf -v "$1" %s "$wall"
}
ERRORS=0
REAL_RUNC=$(command -v runc)
GATE_DIR=$PC_WORK/gate-bin
mkdir -p "$GATE_DIR"
ln -sf "$PC_BIN_DIR/portcullis-runc" "$GATE_DIR/runc"
run_once() { # IMAGE [ctr run flags...] -> prints wall µs, fails if the start failed
  local t0 t1 id=b$SRANDOM image=$1
  shift
  t0=$(now_ns)
  if ! pc_ctr run --rm "$@" "$R/$image" "$id" /bin/true >"$PC_WORK/logs/last-run.log" 2>&1; then
    echo "# start failed ($* $image):" >&2
    cat "$PC_WORK/logs/last-run.log" >&2
    return 1
  fi
  t1=$(now_ns)
  echo $(((t1 - t0) / 1000))
}
# forget_verdicts: the next gated start is cold: no cached verdict (it
# verifies in the sandbox), no known chain ID (a first start of the image),
# no compiled policy (as after a policy change). The entries go, their
# directories stay, as on a node that has started a container before:
# creating the three directories (only a node's very first start does) cost
# about 250 µs of CPU and 0.5 ms of wall time per start here (BENCHMARKS.md).
# The entries are moved aside, not deleted, until the measurements are over:
# when ext4 allocates an inode it passes over every one freed in the last
# dirty_expire seconds (30 s; `recently_deleted`), so deleting three entries
# per cold start made each later cold start's file creations slower, by up
# to 350 µs of CPU (perf), which a node that deletes nothing never pays.
FORGOTTEN=0
forget_verdicts() {
  local aside=$PC_WORK/forgotten/$((FORGOTTEN += 1)) s
  for s in verdicts chains policy-compiled; do
    mkdir -p "$aside/$s"
    find "$PORTCULLIS_STATE_DIR/$s" -mindepth 1 -maxdepth 1 -exec mv -t "$aside/$s" {} + 2>/dev/null || true
  done
}
# run_case CASE IMAGE "A flags" "B flags": PAIRS interleaved pairs (after one
# unrecorded warm-up of each), A then B in odd pairs and B then A in even
# ones, so that what the order does to a start (the null case measured the
# second of two identical starts 5 % faster) and any drift fall on A and B
# alike; walls to $OUT/wall-CASE.{a,b}, the gates' rusage lines to
# $OUT/rusage-CASE.jsonl. CASE ending in -cold empties the verdict cache
# before every B start.
CASES=()
run_case() {
  local case=$1 image=$2 fa fb ta tb a=() b=() pair ca cb cpu_a=() cpu_b=()
  selected "$case" || return 0
  read -r -a fa <<<"$3"
  read -r -a fb <<<"$4"
  CTRD_PID=$(cat "$PC_WORK/run/containerd.pid")
  JD_PID=$(pgrep -x systemd-journal | head -n 1 || true)
  run_once "$image" "${fa[@]}" >/dev/null || ERRORS=$((ERRORS + 1))
  run_once "$image" "${fb[@]}" >/dev/null || ERRORS=$((ERRORS + 1))
  : >"$PORTCULLIS_RUSAGE_LOG"
  for pair in $(seq 1 "$PAIRS"); do
    if ((pair % 2)); then
      measured ta ca "$image" "${fa[@]}" || { ERRORS=$((ERRORS + 1)) && continue; }
    fi
    # cold: no cached verdict, every start verifies (and no known chain ID:
    # a first start of the image); warm: the verdict cache answers
    [[ $case == *-cold ]] && forget_verdicts
    measured tb cb "$image" "${fb[@]}" || { ERRORS=$((ERRORS + 1)) && continue; }
    if ! ((pair % 2)); then
      measured ta ca "$image" "${fa[@]}" || { ERRORS=$((ERRORS + 1)) && continue; }
    fi
    a+=("$ta") b+=("$tb") cpu_a+=("$ca") cpu_b+=("$cb")
  done
  echo "${a[*]}" >"$OUT/wall-$case.a"
  echo "${b[*]}" >"$OUT/wall-$case.b"
  echo "${cpu_a[*]}" >"$OUT/cpu-$case.a"
  echo "${cpu_b[*]}" >"$OUT/cpu-$case.b"
  cp "$PORTCULLIS_RUSAGE_LOG" "$OUT/rusage-$case.jsonl"
  CASES+=("$case")
  echo "# $case: ${#b[@]} of $PAIRS pairs done"
}

LOAD_BEFORE=$(cat /proc/loadavg)
T_CASES=$SECONDS
# 1. the opt-in shim on containerd 1.6 without the runc gate
for case in sig-cold sig-warm prov-cold prov-warm keyless-cold keyless-warm; do
  run_case "$case" "bench/${case%-*}:1" "--runtime io.containerd.runc.v2" "--runtime io.containerd.portcullis.v2"
done

# The null case: plain runc against plain runc in the same A B B A
# design. Its median ratio and interval are what this machine's noise and
# the design's order make of two identical paths: a gate path's ratio is
# read against it.
run_case "null-runc" bench/prov:1 "--runtime io.containerd.runc.v2" "--runtime io.containerd.runc.v2"

conc() { # N cold|warm: N concurrent portcullis starts of the signed image; prints "errors wall_ms"
  local n=$1 t0 t1 errs=0 pids=() i
  [[ $2 == cold ]] && forget_verdicts
  t0=$(now_ns)
  for i in $(seq 1 "$n"); do
    pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$R/bench/sig:1" "c$n-$i-$SRANDOM" /bin/true \
      >"$PC_WORK/logs/conc-$n-$i.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || errs=$((errs + 1)); done
  t1=$(now_ns)
  echo "$errs $(((t1 - t0) / 1000000))"
}
CONC_RES=()
((EXTRAS)) || CONC=()
for n in "${CONC[@]}"; do
  for temp in cold warm; do
    read -r e ms < <(conc "$n" "$temp")
    ERRORS=$((ERRORS + e))
    CONC_RES+=("$n:$temp:$e:$ms")
    echo "# $n concurrent ($temp): $e errors, $ms ms"
  done
done
# Verdict entries are written by rename(2) of a private temporary file: none
# may be left behind by the concurrent writers.
tmp_left=$({ find "$PORTCULLIS_STATE_DIR/verdicts" -name '.tmp-*' 2>/dev/null || true; } | wc -l)

# Lock sample: two cold and two warm starts of the wrapper under strace.
rm -rf "$PORTCULLIS_STATE_DIR/verdicts"
for _ in $( ((EXTRAS)) && seq 1 4); do
  run_once bench/prov:1 --runtime io.containerd.pcstrace.v2 >/dev/null || ERRORS=$((ERRORS + 1))
done
locks=0 sampled=0
for f in "$PC_WORK"/strace/*.txt; do
  [[ -e $f ]] || continue
  head -n 1 "$f" | grep -q '"start"\]' || continue
  sampled=$((sampled + 1))
  # the wrapper's own calls: everything before it execs the inner shim
  n=$(awk '/execve\(".*containerd-shim-runc-v2"/ {exit} /flock\(|F_SETLK|F_OFD_SETLK|F_GETLK/ {c++} END {print c+0}' "$f")
  locks=$((locks + n))
done

# The concurrent starts replaced one verdict entry over and over (each
# rename(2) frees the inode it replaces) and the lock sample removed the
# cache: let those frees age past ext4's window before the next cold starts
# (see forget_verdicts).
((SMOKE)) || sleep $(($(cat /proc/sys/vm/dirty_expire_centisecs 2>/dev/null || echo 3000) / 100 + 1))

# 2. node-wide (runc gate first on containerd's PATH) and both gates, on
# the same containerd 1.6, restarted with the gate directory first on PATH
pc_stop_containerd
PC_CONTAINERD_PATH_PREPEND=$GATE_DIR PATH="$PC_BIN_DIR:$PC_WORK/bin:$PATH" pc_start_containerd
BASE="--runc-binary $REAL_RUNC"
for temp in cold warm; do
  run_case "node-prov-$temp" bench/prov:1 "$BASE" ""
done
# A dense node: DENSE more overlay mounts beside the container's, as the
# rootfs mounts of that many running containers would be. What the gate
# reads of the mount table must not grow with them; plain runc pays for
# them too, so the ratio shows what the gate adds.
DENSE=300
((SMOKE)) && DENSE=20
selected node-dense-warm || DENSE=0
for i in $(seq 1 "$DENSE"); do
  d=$PC_WORK/dense/$i
  mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
  mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged"
done
run_case "node-dense-warm" bench/prov:1 "$BASE" ""
for i in $(seq 1 "$DENSE"); do umount "$PC_WORK/dense/$i/merged"; done
for temp in cold warm; do
  run_case "both-prov-$temp" bench/prov:1 "$BASE" "--runtime io.containerd.portcullis.v2"
done

# Where the runc gate's time goes: two cold and two warm gated starts with
# the gate under `strace -ttt` (named with --runc-binary; PORTCULLIS_RUNC
# names the real runc). Its syscalls mark its phases: exec, policy read,
# containerd connections (lookup, then the binding's snapshot lookup),
# verdict cache, sandbox fork, journald datagram, exec of the real runc.
# No -f: strace would then wait for `runc init`, which waits for `start`
# (the lookup is on the main thread). strace slows every syscall: the split
# is what counts, not the absolute times.
mkdir -p "$PC_WORK/rtrace"
cat >"$PC_WORK/bin/runc-strace" <<EOF
#!/bin/sh
case "\$*" in *" create "*) ;; *) PORTCULLIS_RUNC=$REAL_RUNC exec "$PC_BIN_DIR/portcullis-runc" "\$@" ;; esac
PORTCULLIS_RUNC=$REAL_RUNC exec strace -qq -ttt -o "$PC_WORK/rtrace/\$\$.txt" -e trace=execve,open,openat,connect,sendmsg,sendto,clone,clone3,wait4 "$PC_BIN_DIR/portcullis-runc" "\$@"
EOF
chmod +x "$PC_WORK/bin/runc-strace"
for temp in $( ((EXTRAS)) && echo cold cold warm warm); do
  [[ $temp == cold ]] && forget_verdicts
  run_once bench/prov:1 --runc-binary "$PC_WORK/bin/runc-strace" >/dev/null || ERRORS=$((ERRORS + 1))
done

# Where a warm gated start's instructions go: callgrind of the runc gate's
# `create` on two warm starts (the verdict cache answers, so no sandbox
# child, whose seccomp filter valgrind could not run under), dumped when it
# execs the real runc. Instruction counts, unlike times, do not depend on
# the load. Inclusive counts of the start path's steps go to
# $OUT/callgrind.md, with the profile and its annotation beside it.
if ((!SMOKE && EXTRAS)) && command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
  mkdir -p "$PC_WORK/callgrind"
  rm -f "$PC_WORK"/callgrind/*
  cat >"$PC_WORK/bin/runc-callgrind" <<EOF
#!/bin/sh
case "\$*" in *" create "*) ;; *) PORTCULLIS_RUNC=$REAL_RUNC exec "$PC_BIN_DIR/portcullis-runc" "\$@" ;; esac
PORTCULLIS_RUNC=$REAL_RUNC exec valgrind -q --tool=callgrind --dump-instr=yes --dump-before=execvp --callgrind-out-file="$PC_WORK/callgrind/%p.out" "$PC_BIN_DIR/portcullis-runc" "\$@"
EOF
  chmod +x "$PC_WORK/bin/runc-callgrind"
  run_once bench/prov:1 >/dev/null || ERRORS=$((ERRORS + 1)) # warm the caches
  for i in 1 2; do
    run_once bench/prov:1 --runc-binary "$PC_WORK/bin/runc-callgrind" >/dev/null || ERRORS=$((ERRORS + 1))
  done
  # inclusive instructions of each step, from the larger profile (a whole
  # create up to its execvp of runc: one dump, `.out.1`)
  prof=$(find "$PC_WORK/callgrind" -name '*.out.1' -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)
  if [[ -n $prof ]]; then
    cp "$prof" "$OUT/callgrind-runc-create.out"
    callgrind_annotate --inclusive=yes --threshold=100 "$prof" >"$OUT/callgrind-annotated.txt" 2>&1 || true
    python3 - "$OUT/callgrind-annotated.txt" >"$OUT/callgrind.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
total = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text)
steps = [
    ("whole gated create, to the exec of runc", None),
    ("dynamic loader (`_dl_start`)", r"_dl_start\b"),
    ("policy (`Policy::load_for_start`)", r"Policy::load_for_start"),
    # LTO inlines the lookup into its caller, or block_on into the lookup,
    # in some builds: whichever is the function (not a closure) that holds
    # the runtime
    ("containerd lookup, its runtime and connection included (`containerd::start::lookup`)", r"containerd::(?:start::lookup|lookup::block_on|wire::run) \["),
    ("decision: verdict-cache key and read (`gate::decide::verify_rule`)", r"gate::decide::verify_rule\b"),
    ("of which reading the cache entries for the key (`cache::StateDir::read_raw`)", r"StateDir::read_raw\b"),
    ("of which SHA-256 of the key's inputs (`digest::sha256_prefixed`)", r"digest::sha256_prefixed \["),
    ("journal record (`gate::journal::record`)", r"gate::journal::record\b"),
    ("binding: config.json, snapshot mounts, the mount at the rootfs (`runc::check_binding`)", r"runc::check_binding\b"),
    ("of which config.json (`runc::check_config_root`)", r"runc::check_config_root\b"),
    ("of which the mount at the rootfs (`mounts::mounted_at`: statmount, or mountinfo on older kernels)", r"mounts::mounted_at\b"),
]
print("| step | instructions (inclusive) |")
print("|---|---|")
for name, pat in steps:
    if pat is None:
        n = total.group(1) if total else "?"
    else:
        m = re.search(r"^\s*([\d,]+) \([\d. ]+%\)\s+\S*?" + pat, text, re.M)
        n = m.group(1) if m else "(inlined or not run)"
    print(f"| {name} | {n} |")
PY
    # CPUID instructions executed (each one a VM exit on a virtual machine):
    # the profile's count at every address objdump shows a `cpuid` at.
    if command -v objdump >/dev/null; then
      objdump -d --no-show-raw-insn "$PC_BIN_DIR/portcullis-runc" |
        awk -F'\t' '$2 ~ /^cpuid/ { sub(":", "", $1); gsub(" ", "", $1); print $1 }' >"$PC_WORK/cpuid-sites"
      python3 - "$prof" "$PC_WORK/cpuid-sites" >>"$OUT/callgrind.md" <<'PY'
import collections, sys
sites = {int(l, 16) for l in open(sys.argv[2]) if l.strip()}
# callgrind's `positions: instr line` cost lines: an address (absolute, +/-
# relative or `*`), a line, the cost; the line after `calls=` is a call's
# inclusive cost, not the instruction's own.
count, names, fn, addr, after_call = collections.Counter(), {}, "?", 0, False
for line in open(sys.argv[1]):
    if line.startswith("calls="):
        after_call = True
        continue
    if line.startswith(("fn=", "cfn=")):
        key, _, name = line.strip().partition(" ")
        key = key.lstrip("c")
        if name:
            names[key] = name
        if line.startswith("fn="):
            fn = names.get(key, key)
        continue
    if not line[:1] or line[0] not in "0123456789+-*":
        continue
    t = line.split()
    a = t[0]
    if a.startswith("0x"): addr = int(a, 16)
    elif a[0] in "+-": addr += int(a, 0) if a[1:].startswith("0x") else int(a)
    if after_call:
        after_call = False
        continue
    if addr in sites and len(t) >= 3:
        count[fn] += int(t[2])
by = ", ".join(f"{n} in {f}" for f, n in count.most_common())
print(f"\n`cpuid` instructions executed under valgrind (its CPU model): {sum(count.values())} ({by or 'none'}); each is a VM exit on a virtual machine.")
PY
      # The same on this CPU: gdb stops at each cpuid site of a pass-through
      # of the runc gate (an ungated command whose runc does not exist, so it
      # ends before any exec), which covers the start-up of glibc, aws-lc
      # and Rust, not the gated work.
      if command -v gdb >/dev/null && [[ -s $PC_WORK/cpuid-sites ]]; then
        {
          echo "set pagination off"
          i=1
          while read -r a; do
            printf 'break *0x%s\ncommands %d\nsilent\ncontinue\nend\n' "$a" "$i"
            i=$((i + 1))
          done <"$PC_WORK/cpuid-sites"
          echo "run"
          echo "info breakpoints"
        } >"$PC_WORK/cpuid.gdb"
        PORTCULLIS_RUNC=/nonexistent timeout 120 gdb -batch -x "$PC_WORK/cpuid.gdb" --args "$PC_BIN_DIR/portcullis-runc" state bench-cpuid 2>/dev/null |
          python3 -c '
import collections, re, sys
c, last = collections.Counter(), None
for l in sys.stdin:
    m = re.search(r"<([^+>]+)", l)
    if m: last = m.group(1)
    h = re.search(r"already hit (\d+) time", l)
    if h and last: c[last] += int(h.group(1))
by = ", ".join(f"{n} in {f}" for f, n in c.most_common()) or "none"
print(f"`cpuid` instructions executed on this CPU by a pass-through (start-up only, gdb): {sum(c.values())} ({by}).")
' >>"$OUT/callgrind.md" || true
      fi
    fi
    echo "# callgrind of a warm runc-gate create ($prof):"
    cat "$OUT/callgrind.md"
  else
    echo "# callgrind: no profile written" >&2
  fi
  # The function order of the start-path binaries (packaging/link-gates):
  # the symbols a warm runc-gate create and a warm shim start execute, by
  # their mangled names, then those a cold runc-gate create adds, written
  # to $OUT/start-path.order. Copy it over packaging/start-path.order after
  # a change to the start path (BENCHMARKS.md, "Function order"); the count
  # of its names the committed file lacks is printed. Under valgrind the
  # cold create is refused: its verification child cannot install its
  # seccomp filter (valgrind does not implement seccomp(2)), so the cold
  # profile covers the gate's cold path (policy compile, chain ID, fork,
  # refusal) and the child's up to its confinement, not the verification.
  mkdir -p "$PC_WORK/callgrind-mangled" "$PC_WORK/callgrind-cold"
  rm -f "$PC_WORK"/callgrind-mangled/* "$PC_WORK"/callgrind-cold/*
  cat >"$PC_WORK/bin/runc-callgrind-mangled" <<EOF
#!/bin/sh
case "\$*" in *" create "*) ;; *) PORTCULLIS_RUNC=$REAL_RUNC exec "$PC_BIN_DIR/portcullis-runc" "\$@" ;; esac
PORTCULLIS_RUNC=$REAL_RUNC exec valgrind -q --tool=callgrind --demangle=no --dump-before=execvp --callgrind-out-file="$PC_WORK/callgrind-mangled/runc-%p.out" "$PC_BIN_DIR/portcullis-runc" "\$@"
EOF
  cat >"$PC_WORK/bin/containerd-shim-pccallgrind-v2" <<EOF
#!/bin/sh
case "\$*" in *" start"*) exec valgrind -q --tool=callgrind --demangle=no --dump-before=execve --callgrind-out-file="$PC_WORK/callgrind-mangled/shim-%p.out" "$PC_BIN_DIR/containerd-shim-portcullis-v2" "\$@" ;; esac
exec "$PC_BIN_DIR/containerd-shim-portcullis-v2" "\$@"
EOF
  cat >"$PC_WORK/bin/runc-callgrind-cold" <<EOF
#!/bin/sh
case "\$*" in *" create "*) ;; *) PORTCULLIS_RUNC=$REAL_RUNC exec "$PC_BIN_DIR/portcullis-runc" "\$@" ;; esac
PORTCULLIS_RUNC=$REAL_RUNC exec valgrind -q --tool=callgrind --demangle=no --dump-before=execvp --callgrind-out-file="$PC_WORK/callgrind-cold/runc-%p.out" "$PC_BIN_DIR/portcullis-runc" "\$@"
EOF
  chmod +x "$PC_WORK/bin/runc-callgrind-mangled" "$PC_WORK/bin/containerd-shim-pccallgrind-v2" "$PC_WORK/bin/runc-callgrind-cold"
  run_once bench/prov:1 --runc-binary "$PC_WORK/bin/runc-callgrind-mangled" >/dev/null || ERRORS=$((ERRORS + 1))
  run_once bench/prov:1 --runtime io.containerd.pccallgrind.v2 >/dev/null || ERRORS=$((ERRORS + 1))
  # refused under valgrind (above): not an error of the benchmark. A key
  # signature with provenance, then a keyless signature, whose gate alone
  # compiles the identity expression and parses the trust root before the
  # fork.
  for image in bench/prov:1 bench/keyless:1; do
    forget_verdicts
    run_once "$image" --runc-binary "$PC_WORK/bin/runc-callgrind-cold" >/dev/null 2>&1 || true
  done
  # A pass-through of each gate, placed before everything else: every
  # container start runs the runc gate for `start`, `delete` and more
  # (containerd's runc shim calls runc for each) and the shim wrapper for
  # `delete`, and each of those only execs what it hands over to. Their
  # few functions first keep that path in a handful of 64 KiB windows of
  # code (BENCHMARKS.md, "Pass-throughs first"). The runc gate's: `state`
  # of no container (the real runc answers that none exists); the shim
  # wrapper's: `-v` (the runc shim prints its version).
  mkdir -p "$PC_WORK/callgrind-pass"
  rm -f "$PC_WORK"/callgrind-pass/*
  PORTCULLIS_RUNC=$REAL_RUNC valgrind -q --tool=callgrind --demangle=no --dump-before=execvp \
    --callgrind-out-file="$PC_WORK/callgrind-pass/1-runc.out" \
    "$PC_BIN_DIR/portcullis-runc" --root "$PC_WORK/no-runc-root" state bench-pass >/dev/null 2>&1 || true
  valgrind -q --tool=callgrind --demangle=no --dump-before=execve \
    --callgrind-out-file="$PC_WORK/callgrind-pass/2-shim.out" \
    "$PC_BIN_DIR/containerd-shim-portcullis-v2" -v >/dev/null 2>&1 || true
  # The verification itself, which the sandboxed child runs on a cold
  # start and valgrind cannot profile in the gate (above): the criterion
  # bench's in-process steps call the same library functions, so callgrind
  # of its cold decisions (`decide_cold_key`, `decide_cold_keyless`:
  # collecting inside `sandbox::run_timed`'s closure, everything the child
  # runs: the decision's verification and its result's encoding; since
  # 623c821 the verification's own closure is inlined into it) and of its
  # DSSE provenance step (the
  # envelope, statement and predicate functions it calls one after the
  # other: `Provenance::from_statement` is inlined into the bench, so its
  # callee `from_predicate` is what flips) names the verification's code. `--toggle-collect` flips
  # collection at each entry and exit of a function it names, so no two of
  # them may be nested: a function named inside another's call would turn
  # collection off for its whole call (a keyless bundle's verification did,
  # inside the decision, until 2026-12-03). Its names carry the hashes of
  # the bench's glibc build, whose instances of a generic are not always
  # the gates': start-path-order writes them without their hashes, so
  # link-gates places every instance of each, after everything above.
  gate_bench=$(cd "$ROOT" && cargo bench --bench gate --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
  # Each cold decision is profiled for a second of its iterations: the
  # same profiles give what a cold decision computes (below).
  verify=()
  for case in decide_cold_key decide_cold_keyless provenance_dsse; do
    prof=$PC_WORK/callgrind-$case.out
    rm -f "$prof"
    if [[ $case == provenance_dsse ]]; then
      toggles=(--toggle-collect='*8Envelope5parse*' --toggle-collect='*8Envelope6verify*'
        --toggle-collect='*9Statement5parse*' --toggle-collect='*10Provenance*')
      run=(--test "$case")
    else
      toggles=(--toggle-collect='*7sandbox9run_timed28_*')
      run=(--profile-time 1 "^$case\$")
    fi
    [[ -n $gate_bench ]] && (cd "$ROOT" && valgrind -q --tool=callgrind --demangle=no "${toggles[@]}" \
      --callgrind-out-file="$prof" "$gate_bench" --bench "${run[@]}" >/dev/null 2>&1) || true
    if [[ -s $prof ]] && grep -q '^fn=' "$prof"; then
      verify+=("$prof")
    else
      echo "# function order: no profile of the verification's $case step (criterion bench: ${gate_bench:-not built}); its functions stay unordered" >&2
    fi
  done
  # the pass-throughs' dumps up to their exec, then the first dump of each
  # warm one (up to the exec of runc, or of the inner shim), then the cold
  # gate's and its child's, by pid, then the verification's
  mapfile -t pass < <(find "$PC_WORK/callgrind-pass" -name '*.out.1' | sort)
  mapfile -t profs < <(find "$PC_WORK/callgrind-mangled" -name '*.out.1' | sort)
  mapfile -t cold < <(find "$PC_WORK/callgrind-cold" -name 'runc-*.out*' -size +0 | sort -t- -k2 -n)
  order_profiles=(--part pass-through "${pass[@]}" --part warm "${profs[@]}" --part cold "${cold[@]}")
  ((${#verify[@]})) && order_profiles+=(--foreign "${verify[@]}")
  if ((${#pass[@]} == 2 && ${#profs[@]} == 2 && ${#cold[@]} >= 1)) &&
    "$ROOT/packaging/start-path-order" "${order_profiles[@]}" >"$OUT/start-path.order"; then
    new=$(grep -v '^#' "$OUT/start-path.order" | sort -u | comm -23 - <(grep -v '^#' "$ROOT/packaging/start-path.order" | sort -u) | wc -l)
    echo "# function order: $OUT/start-path.order, $(grep -vc '^#' "$OUT/start-path.order") functions, $new not in packaging/start-path.order"
  else
    echo "# function order: no profiles (pass-through: ${pass[*]:-none}; warm: ${profs[*]:-none}; cold: ${cold[*]:-none})" >&2
  fi
fi

# What a cold start's verification computes: the callgrind profiles of the
# criterion bench's cold decisions made for the function order above
# (`decide_cold_key`, `decide_cold_keyless`: the same `gate::decide` a gate
# runs, its sandbox closure run in process because the bench holds a
# second thread), collected only inside that closure, which is what the
# verification child runs. Per decision: its
# instructions, how many ECDSA P-256 verifications it makes and their
# share, and the steps of a Sigstore bundle's verification, to
# $OUT/callgrind-verify.md. Instruction counts do not move with the load;
# valgrind's CPU model lacks the SHA and ADX extensions this CPU has, so
# the hashing and the curve arithmetic weigh more here than they run.
if ((!SMOKE && EXTRAS)) && command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
  : >"$PC_WORK/callgrind-verify-steps.txt"
  for case in decide_cold_key decide_cold_keyless; do
    if [[ -s $PC_WORK/callgrind-$case.out ]]; then
      echo "== $case" >>"$PC_WORK/callgrind-verify-steps.txt"
      callgrind_annotate --inclusive=yes --tree=calling "$PC_WORK/callgrind-$case.out" 2>/dev/null |
        c++filt >>"$PC_WORK/callgrind-verify-steps.txt" || true
    fi
  done
  if python3 - "$PC_WORK/callgrind-verify-steps.txt" >"$OUT/callgrind-verify.md" <<'PY'; then
import re, sys
cases, cur = {}, None
for line in open(sys.argv[1]):
    if line.startswith("== "):
        cur = cases.setdefault(line[3:].strip(), [])
    elif cur is not None:
        cur.append(line.rstrip("\n"))
own = re.compile(r"^\s*([\d,]+) \([\d. ]+%\)\s+\*\s+\S*?:(.*?)(?: \[.*\])?\s*$")
call = re.compile(r"^\s*[\d,]+ \([\d. ]+%\)\s+>\s+\S*?:(.*?) \(([\d,]+)x\)")
def n(s): return int(s.replace(",", ""))
def name(s): return re.sub(r"::h[0-9a-f]{16}", "", s)
steps = [
    ("ECDSA P-256 verifications", r"ecdsa_do_verify_no_self_test$"),
    ("Sigstore bundle, certificate chain to the trust root (webpki)", r"webpki::verify_cert::ChainOptions<.*>::build_chain$"),
    ("Sigstore bundle, signature over the payload", r"sigstore_verify::verify::verify_message_signature_crypto$"),
    ("Sigstore bundle, SCT", r"sigstore_verify::verify_impl::sct::verify_sct$"),
    ("Sigstore bundle, Rekor SET (signed entry timestamp)", r"sigstore_verify::verify_impl::tlog::verify_set$"),
    ("Sigstore bundle, Rekor inclusion proof and checkpoint (its SET included)", r"sigstore_verify::verify_impl::tlog::verify_entry_inclusion$"),
    ("SHA-256 blocks", r"sha256_block_data_order$"),
    # the child parses the bytes the gate read for the key (`EntryReads`)
    ("cache entries parsed and checked", r"portcullis::state::cache::RawEntry::parse$"),
]
out = ["| cold decision | step | instructions per decision | share | calls per decision |", "|---|---|---|---|---|"]
for case, lines in cases.items():
    incl, calls = {}, {}
    for l in lines:
        m = own.match(l)
        if m:
            incl.setdefault(name(m.group(2)), n(m.group(1)))
            continue
        m = call.match(l)
        if m:
            k = name(m.group(1))
            calls[k] = calls.get(k, 0) + n(m.group(2))
    top = [k for k in incl if re.search(r"gate::sandbox::run_timed::\{\{closure\}\}$", k)]
    whole = max((incl[k] for k in top), default=0)
    decisions = max((calls.get(k, 0) for k in top if incl[k] == whole), default=0)
    if not whole or not decisions:
        continue
    out.append(f"| `{case}` | whole verification (the sandbox's closure) | {whole // decisions:,} | 100 % | 1 |")
    for label, pat in steps:
        ks = [k for k in incl if re.search(pat, k)]
        i = sum(incl[k] for k in ks)
        c = sum(calls.get(k, 0) for k in ks)
        if c:  # a step this decision does not take gets no row
            out.append(f"| `{case}` | {label} | {i // decisions:,} | {100 * i / whole:.1f} % | {c / decisions:.1f} |")
if len(out) == 2:
    sys.exit(1)
print("\n".join(out))
PY
    echo "# callgrind of the verification's cold decisions ($OUT/callgrind-verify.md):"
    cat "$OUT/callgrind-verify.md"
  else
    echo "# callgrind of the verification: no profile of a cold decision (see the function order above)" >&2
  fi
fi

# Where a gated start's CPU goes, the kernel's share included: `perf
# record` of the whole machine (cpu-clock samples with call chains) while
# PERF_STARTS node-wide starts run, warm and then cold, the runc gate named
# for `create` only (every other runc command runs the real runc directly,
# so every sample of a process named portcullis-runc is a gated create,
# from the exec that names it to the exec of runc that renames it, or its
# forked verification child, which perf's fork events tell apart). Each
# sample is filed under the first matching step of its call chain: page
# faults, the exec into the gate, the fork of the verification child, the
# teardown of an address space (the gate's when it execs runc, the child's
# when it exits), each system call, or user space. The time per start is
# samples x the sampling period / starts; sampling itself slows every
# process, so the split is what counts. Written to
# $OUT/perf-runc-create.md (warm) and $OUT/perf-runc-create-cold.md (cold:
# the verdict cache, the known chain IDs and the compiled policy emptied
# before each start, so every start verifies in the sandbox). perf script's
# output stays in $PC_WORK/perf-{warm,cold}.txt (with PC_KEEP_WORK=1).
PERF_STARTS=40
perf_creates() { # warm|cold OUTFILE
  local temp=$1 out=$2 perf_pid
  perf record -q -a -g -e cpu-clock -F 10000 -o "$PC_WORK/perf.data" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 1
  for _ in $(seq 1 "$PERF_STARTS"); do
    [[ $temp == cold ]] && forget_verdicts
    run_once bench/prov:1 --runc-binary "$PC_WORK/bin/runc-create-only" >/dev/null || ERRORS=$((ERRORS + 1))
  done
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf script -i "$PC_WORK/perf.data" --comm portcullis-runc --show-task-events -F comm,tid,ip,sym >"$PC_WORK/perf.txt" 2>/dev/null || true
  python3 - "$PC_WORK/perf.txt" "$PERF_STARTS" 10000 "$temp" >"$out" <<'PY' || echo "# perf: no breakdown" >&2
import collections, re, sys
starts, freq, temp = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
samples, cur, children = [], None, set()
for line in open(sys.argv[1]):
    if "PERF_RECORD_" in line:
        # forks by a process named portcullis-runc (the line names the
        # parent): their children are the sandboxed verification children;
        # the fork that made the gate itself is the runc shim's
        m = re.match(r"\s*(\S+)\s+\d+\s+PERF_RECORD_FORK\((\d+):\d+\)", line)
        if m and m.group(1) == "portcullis-runc": children.add(int(m.group(2)))
        continue
    if not line.strip():
        if cur is not None: samples.append(cur)
        cur = None
    elif not line.startswith((" ", "\t")) or cur is None:
        tid = [t for t in line.split() if t.isdigit()]
        cur = (int(tid[0]) if tid else -1, [])
    else:
        f = line.split(None, 1)
        cur[1].append((int(f[0], 16), f[1].strip() if len(f) > 1 else "?"))
if cur is not None: samples.append(cur)
if not samples: sys.exit(1)
# (musl's `open` and `stat` are glibc's `openat` and `newfstatat`)
files = {"open", "openat", "read", "pread64", "stat", "statx", "write", "close", "readlink", "readlinkat", "fstat", "lseek", "getdents64", "statmount"}
socks = {"socket", "connect", "sendto", "sendmsg", "recvfrom", "recvmsg", "poll", "ppoll", "ioctl"}
def step(chain, child):
    syms = [s for _, s in chain]
    kernel = [s for a, s in chain if a >= 0xffff000000000000]
    if any("exc_page_fault" in s for s in syms):
        return "page faults (copy-on-write after the fork, heap, stack)" if child else "page faults (text and data of the binary, heap, stack)"
    if any(s.startswith(("exit_mmap", "exec_mmap")) for s in kernel):
        return "address space torn down at its exit" if child else "address space torn down at the exec of runc"
    if any(s.startswith(("copy_process", "dup_mm", "copy_page_range", "kernel_clone")) for s in kernel):
        return "fork of the verification child (page tables copied)"
    if any(s.startswith("load_elf_binary") for s in kernel):
        return "exec of the gate (loading the binary)"
    if any(s.startswith(("bprm_execve", "do_execveat_common")) for s in kernel):
        return "exec, other"
    if any(s.startswith("show_mountinfo") for s in kernel):
        return "files: read of /proc/self/mountinfo (the binding check, kernels without statmount)"
    if any(s.startswith("show_map") for s in kernel):
        return "files: read of /proc/self/maps (the main thread's stack bounds, at start-up)"
    if any(s.startswith("proc_pid_status") for s in kernel):
        return "files: read of /proc/self/status (this benchmark's peak memory)"
    for s in reversed(kernel):
        m = re.match(r"(?:__x64_sys_|__do_sys_|__se_sys_|ksys_)(\w+)", s)
        if m:
            name = {"newfstatat": "statx", "newstat": "stat", "newfstat": "fstat", "vm_mmap_pgoff": "mmap"}.get(m.group(1), m.group(1))
            if name in files: return f"files: {name}"
            if name in socks: return f"sockets (containerd, journald): {name}"
            return f"other system call: {name}"
    if kernel:
        return "kernel, other (interrupts, scheduling)"
    return "user space"
def label(tid, chain):
    child = tid in children
    return ("verification child: " if child else "") + step(chain, child)
count = collections.Counter(label(t, c) for t, c in samples)
total = sum(count.values())
in_child = sum(v for k, v in count.items() if k.startswith("verification child: "))
period_us = 1e6 / freq
print(f"{total} samples of {starts} {temp} gated creates (cpu-clock at {freq} Hz, the whole machine sampled); "
      f"{len(children)} verification children forked, {100 * in_child / total:.1f} % of the samples in them:\n")
print("| step | share | µs per start |")
print("|---|---|---|")
for k, v in sorted(count.items(), key=lambda kv: -kv[1]):
    print(f"| {k} | {100 * v / total:.1f} % | {v * period_us / starts:.0f} |")
print(f"| all | 100 % | {total * period_us / starts:.0f} |")
PY
  echo "# perf: where a $temp runc-gate create's CPU goes"
  cat "$out"
  mv "$PC_WORK/perf.txt" "$PC_WORK/perf-$temp.txt"
  rm -f "$PC_WORK/perf.data"
}
if ((!SMOKE && EXTRAS)) && command -v perf >/dev/null; then
  cat >"$PC_WORK/bin/runc-create-only" <<EOF
#!/bin/sh
case "\$*" in *" create "*) PORTCULLIS_RUNC=$REAL_RUNC exec "$PC_BIN_DIR/portcullis-runc" "\$@" ;; esac
exec "$REAL_RUNC" "\$@"
EOF
  chmod +x "$PC_WORK/bin/runc-create-only"
  run_once bench/prov:1 --runc-binary "$PC_WORK/bin/runc-create-only" >/dev/null || ERRORS=$((ERRORS + 1)) # warm
  perf_creates warm "$OUT/perf-runc-create.md"
  perf_creates cold "$OUT/perf-runc-create-cold.md"
fi

PC_CONTAINERD_SOCK1=$PC_CONTAINERD_SOCK

# 3. node-wide on containerd 2.4.2 (fresh root, its own ctr), as in containerd2.sh
V2=2.4.2
CTR2_DIR=${PC_TOOLS:-/opt/portcullis-tools}/containerd-v$V2
[[ -x $CTR2_DIR/containerd && -x $CTR2_DIR/ctr ]] || {
  echo "# containerd $V2 missing under $CTR2_DIR: run integration/tools.sh" >&2
  exit 1
}
_pc_ctr_cleanup
pc_stop_containerd
_pc_kill_shims
_pc_umount_work
rm -rf --one-file-system "$PC_WORK/containerd"
OLD_PATH=$PATH
PATH=$CTR2_DIR:$PATH
PC_CONTAINERD_VERSION=$V2 PC_CONTAINERD_PATH_PREPEND=$GATE_DIR PATH="$PC_BIN_DIR:$PC_WORK/bin:$PATH" pc_start_containerd
CTRD2_VERSION=$("$CTR2_DIR/containerd" --version)
pc_pull bench/prov:1 >/dev/null
for temp in cold warm; do
  run_case "node2-prov-$temp" bench/prov:1 "$BASE" ""
done
T_CASES=$((SECONDS - T_CASES))
# every case asked for ran (KNOWN_CASES names the run_case calls above)
for c in ${FOCUS//,/ }; do
  [[ " ${CASES[*]} " == *" $c "* ]] || {
    echo "# PC_BENCH_CASES: $c did not run (KNOWN_CASES and the run_case calls disagree)" >&2
    exit 1
  }
done
rm -rf "$PC_WORK/forgotten"

sleep 1
# gate processes of THIS run still alive (exec'd gates show as the shim's or runc's)
resident=$(
  {
    pgrep -r R,S,D -f "containerd-shim-portcullis-v2.*$PC_CONTAINERD_SOCK" || true
    for e in /proc/[0-9]*/exe; do
      [[ $(readlink "$e" 2>/dev/null) == "$PC_BIN_DIR/portcullis-runc" ]] && echo "$e"
    done
    true
  } | wc -l
)
PATH=$OLD_PATH
LOAD_AFTER=$(cat /proc/loadavg)

status=0
RTRACE=$PC_WORK/rtrace POLICY=$PORTCULLIS_POLICY SOCK=$PC_CONTAINERD_SOCK1 REAL_RUNC=$REAL_RUNC \
python3 - "$OUT" "$PAIRS" "$SMOKE" "$ERRORS" "$resident" "$tmp_left" "$sampled" "$locks" \
  "$LOAD_BEFORE" "$LOAD_AFTER" "${CONC_RES[*]}" "$T_CASES" "$CTRD2_VERSION" "${CASES[@]}" \
  <<'PY' || status=$?
import json, statistics, sys, platform, os, subprocess, datetime
(out, pairs, smoke, errors, resident, tmp_left, sampled, locks, load_before, load_after, conc, t_cases, ctrd2) = sys.argv[1:14]
pairs, smoke, errors = int(pairs), smoke == "1", int(errors)
names = sys.argv[14:]
def pct(xs, p):
    if not xs: return float("nan")
    xs = sorted(xs); k = (len(xs) - 1) * p; f = int(k); c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)
med = lambda xs: statistics.median(xs) if xs else float("nan")
def median_ci95(xs, resamples=2000):
    """Percentile bootstrap interval of the median (fixed seed: a run's
    report is reproducible from its pairs)."""
    if len(xs) < 5:
        return None
    import random
    rng = random.Random(15)
    ms = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    return [ms[int(0.025 * resamples)], ms[int(0.975 * resamples) - 1]]
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
res = {"pairs": pairs, "smoke": smoke,
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
       "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "memory": mem,
       "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
       "containerd": subprocess.run(["containerd","--version"],capture_output=True,text=True).stdout.strip(),
       "containerd_2x": ctrd2.strip()},
       "loadavg": {"before": load_before, "after": load_after},
       "cases_wall_s": int(t_cases),
       "cases_selected": os.environ.get("PC_BENCH_CASES") or "all",
       "errors": errors, "cases": {}}
phases = ["policy_us", "lookup_us", "decide_us", "key_us", "cache_read_us", "verify_us", "journal_us", "total_us"]
# The verification child's steps (sandbox::Timeline), logged when one ran.
child_steps = ["fork_us", "child_start_us", "confine_us", "work_us", "exit_us", "reap_us"]
# Which gates log a line per gated start, in the order they log it.
def gates_of(name):
    return {"node": ["runc"], "node2": ["runc"], "both": ["shim", "runc"], "null": []}.get(name.split("-")[0], ["shim"])
def cpu_ms(r): return (r["user_us"]+r["sys_us"]+r.get("child_user_us",0)+r.get("child_sys_us",0))/1000
for name in names:
    a = [int(x)/1000 for x in open(f"{out}/wall-{name}.a").read().split()]
    b = [int(x)/1000 for x in open(f"{out}/wall-{name}.b").read().split()]
    ratios = [y/x for x, y in zip(a, b)]
    ru = [json.loads(l) for l in open(f"{out}/rusage-{name}.jsonl")]
    gates = gates_of(name)
    # sequential starts: the lines come in the gates' order, one each per start
    per_gate = {g: ru[i::len(gates)] for i, g in enumerate(gates)}
    if len(ru) != len(gates) * len(b):
        print(f"# {name}: {len(ru)} rusage lines for {len(b)} starts through {gates}", file=sys.stderr)
        errors += 1
    starts = list(zip(*per_gate.values()))
    cpu = [sum(cpu_ms(r) for r in st) for st in starts]
    rss = [r["max_rss_kib"]/1024 for r in ru]
    crss = [r.get("child_max_rss_kib",0)/1024 for r in ru]
    # what each start cost the machine, containerd and journald (ns, by pair)
    machine = {}
    ca = [[int(v) for v in t.split(",")] for t in open(f"{out}/cpu-{name}.a").read().split()]
    cb = [[int(v) for v in t.split(",")] for t in open(f"{out}/cpu-{name}.b").read().split()]
    for i, who in enumerate(("machine", "containerd", "journald")):
        pa, pb = [x[i]/1e6 for x in ca], [x[i]/1e6 for x in cb]
        d = [y - x for x, y in zip(pa, pb)]
        machine[who] = {"plain_median": med(pa), "gated_median": med(pb), "difference_median": med(d),
                        "difference_median_ci95": median_ci95(d), "difference_mean": statistics.mean(d) if d else float("nan")}
    res["cases"][name] = {
        "gates": gates,
        "pairs": len(b),
        "runc_ms": {"median": med(a), "p95": pct(a, .95)},
        "portcullis_ms": {"median": med(b), "p95": pct(b, .95)},
        "ratio": {"median": med(ratios), "median_ci95": median_ci95(ratios), "p95": pct(ratios, .95), "pairs": [round(r, 4) for r in ratios]},
        "wrapper_cpu_ms": {"median": med(cpu), "p95": pct(cpu, .95), "n": len(cpu)},
        "wrapper_peak_rss_mib": {"max": max(rss, default=0), "median": med(rss)},
        "child_peak_rss_mib": {"max": max(crss, default=0)},
        "sandboxed_verifications": sum(1 for r in ru if r.get("sandbox") == "child"),
        "cpu_per_start_ms": machine,
        "per_gate": {g: {"cpu_ms": {"median": med([cpu_ms(r) for r in rs]), "p95": pct([cpu_ms(r) for r in rs], .95)},
                         "peak_rss_mib": {"max": max((r["max_rss_kib"]/1024 for r in rs), default=0)},
                         "total_us_median": med([r.get("total_us", 0) for r in rs]),
                         # page faults (the verification child's included) and waits, from the fork
                         "minflt_median": med([r.get("minflt", 0) + r.get("child_minflt", 0) for r in rs]),
                         "nvcsw_median": med([r.get("nvcsw", 0) for r in rs]),
                         "sandboxed_verifications": sum(1 for r in rs if r.get("sandbox") == "child"),
                         # both gates log their phases (the runc gate's total runs from its main)
                         "phases_us_median": {p: med([r.get(p, 0) for r in rs]) for p in phases},
                         # the verification child's steps, over the starts that forked one
                         "child_steps_us_median": ({p: med([r.get(p, 0) for r in rs if r.get("sandbox") == "child"]) for p in child_steps}
                                                   if any(r.get("sandbox") == "child" for r in rs) else None)}
                     for g, rs in per_gate.items()},
    }
# The runc gate's timeline under strace: µs from its exec to each marker.
import glob, re
def timeline(path):
    first = None; marks = {}
    for l in open(path):
        m = re.match(r"(?:\d+\s+)?(\d+\.\d+)\s+(.*)", l)
        if not m: continue
        ts, call = float(m.group(1)), m.group(2)
        if first is None: first = ts
        def mark(k):
            marks.setdefault(k, ts)
        opens = call.startswith(("openat(", "open("))  # glibc's openat, musl's open
        if opens and os.environ["POLICY"] in call: mark("policy_open")
        if call.startswith("connect(") and os.environ["SOCK"] in call:
            marks.setdefault("containerd_connect_1", ts)
            if ts != marks["containerd_connect_1"]: marks["containerd_connect_last"] = ts
        if opens and "/verdicts" in call: mark("verdict_cache")
        if re.match(r"clone3?\(", call) and "CLONE_THREAD" not in call: mark("sandbox_fork")
        if call.split("(")[0] in ("connect", "sendmsg", "sendto") and "journal" in call: mark("journald")
        if call.startswith("execve(") and os.environ["REAL_RUNC"] in call:
            mark("exec_real_runc")
            break  # the rest is runc's
    return {k: round((v - first) * 1e6) for k, v in sorted(marks.items(), key=lambda kv: kv[1])} if first else {}
traces = sorted(glob.glob(os.path.join(os.environ["RTRACE"], "*.txt")), key=os.path.getmtime)
res["runc_gate_strace_timeline_us"] = [dict(start=("cold" if i < 2 else "warm"), **timeline(t)) for i, t in enumerate(traces)]
res["concurrent"] = {}
for item in conc.split():
    n, temp, e, ms = item.split(":")
    res["concurrent"].setdefault(n, {})[temp] = {"errors": int(e), "wall_ms": int(ms)}
res["verdict_tmp_files_left"] = int(tmp_left)
res["lock_sample"] = {"wrapper_starts_traced": int(sampled), "file_locks_taken": int(locks)}
res["resident_wrapper_processes"] = int(resident or 0)
C = res["cases"]
maxn = max(res["concurrent"], key=int, default=None)
targets = []
for path, cases in [("shim", ("prov-cold", "prov-warm")), ("node-wide 1.6", ("node-prov-cold", "node-prov-warm")),
                    ("both", ("both-prov-cold", "both-prov-warm")), ("node-wide 2.4.2", ("node2-prov-cold", "node2-prov-warm"))]:
    for temp, limit in (("cold", 1.02), ("warm", 1.01)):
        c = C.get(cases[0] if temp == "cold" else cases[1])
        if c is None: continue  # not among PC_BENCH_CASES
        cpu_limit = 3 if temp == "cold" else 1
        targets += [
            (f"{path}: median wall ratio, signature + provenance, {temp}", f"<= {limit}", c["ratio"]["median"], c["ratio"]["median"] <= limit),
            (f"{path}: gate CPU per start, {temp} (median)", f"<= {cpu_limit} ms", c["wrapper_cpu_ms"]["median"], c["wrapper_cpu_ms"]["median"] <= cpu_limit),
        ]
for temp, limit in (("cold", 3), ("warm", 1)):
    gated = [k for k in C if k.endswith(temp) and C[k]["gates"]]
    if gated:
        w = max(C[k]["wrapper_cpu_ms"]["median"] for k in gated)
        targets.append((f"gate CPU per start, {temp} (median, worst case)", f"<= {limit} ms", w, w <= limit))
gated = [k for k in C if C[k]["gates"]]
if gated:
    peak = max(C[k]["wrapper_peak_rss_mib"]["max"] for k in gated)
    targets.append(("gate peak memory (max, any gate)", "<= 16 MiB", peak, peak <= 16))
targets.append(("gate processes left resident", "0", res["resident_wrapper_processes"], res["resident_wrapper_processes"] == 0))
if res["concurrent"]:
    e = sum(v["errors"] for v in res["concurrent"][maxn].values())
    targets.append((f"{maxn} concurrent starts, errors (cold + warm)", "0", e, e == 0))
if int(sampled) or res["cases_selected"] == "all":
    targets.append(("file locks taken by sampled wrapper starts", "0", int(locks), int(locks) == 0 and int(sampled) > 0))
res["targets"] = None if smoke else [{"target": t, "limit": l, "measured": m, "met": ok} for t, l, m, ok in targets]
res["errors"] = errors
json.dump(res, open(f"{out}/starts.json", "w"), indent=1)
label = {"sig-cold": "shim: signature (ECDSA P-256 key), cold", "sig-warm": "shim: signature, warm verdict cache",
         "prov-cold": "shim: signature + SLSA v1 provenance, cold", "prov-warm": "shim: signature + provenance, warm",
         "keyless-cold": "shim: keyless (certificate chain + Rekor), cold", "keyless-warm": "shim: keyless, warm",
         "null-runc": "null case: plain runc against plain runc (this machine's noise floor)",
         "node-prov-cold": "node-wide (runc gate), 1.6: sig + provenance, cold", "node-prov-warm": "node-wide (runc gate), 1.6: warm",
         "node-dense-warm": "node-wide (runc gate), 1.6: warm, 300 more overlay mounts on the node (20 in a smoke run)",
         "both-prov-cold": "both (shim + runc gate), 1.6: sig + provenance, cold", "both-prov-warm": "both (shim + runc gate), 1.6: warm",
         "node2-prov-cold": f"node-wide (runc gate), 2.4.2: sig + provenance, cold", "node2-prov-warm": "node-wide (runc gate), 2.4.2: warm"}
def ci_text(r):
    ci = r.get("median_ci95")
    return f"[{ci[0]:.3f}, {ci[1]:.3f}] " if ci else ""
m = res["machine"]
lines = [f"Run {res['date']}{' (smoke: not a measurement)' if smoke else ''}. Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory']} RAM, kernel {m['kernel']}, {m['containerd']}; {m['containerd_2x']}.",
         f"Load average (1/5/15 min) before: {load_before.split()[0:3]}, after: {load_after.split()[0:3]}.",
         *([f"Only the cases of PC_BENCH_CASES ({res['cases_selected']}): no concurrency, lock, strace or profile sections."] if res["cases_selected"] != "all" else []),
         f"`ctr run --rm` of a busybox image, {pairs} interleaved pairs per case (measurement, concurrency and samples took {t_cases} s); cold: the verdict cache and the known chain IDs are emptied before each gated start. "
         f"Baseline: plain runc (shim cases: `--runtime io.containerd.runc.v2` on a containerd without the runc gate; node-wide and both: `--runc-binary <real runc>` on the gated containerd). Failed starts: {errors}.", "",
         "| case | runc median / p95 (ms) | gated median / p95 (ms) | ratio median [95 % interval] / p95 | gate CPU median / p95 (ms) | gate peak RSS (MiB) |",
         "|---|---|---|---|---|---|"]
for k, c in C.items():
    gate = (f"{c['wrapper_cpu_ms']['median']:.2f} / {c['wrapper_cpu_ms']['p95']:.2f} | {c['wrapper_peak_rss_mib']['max']:.1f}"
            if c["gates"] else "— | —")
    lines.append(f"| {label.get(k, k)} | {c['runc_ms']['median']:.1f} / {c['runc_ms']['p95']:.1f} | {c['portcullis_ms']['median']:.1f} / {c['portcullis_ms']['p95']:.1f} | "
                 f"{c['ratio']['median']:.3f} {ci_text(c['ratio'])}/ {c['ratio']['p95']:.3f} | {gate} |")
def diff_text(v):
    ci = v["difference_median_ci95"]
    return f"{v['difference_median']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
lines += ["", "What a start costs the machine (CPU time per start, ms; machine: every task's, the root cgroup's usage; containerd: all its threads; journald: systemd-journald; "
          "each read around each start; plain runc's start → the gated start's, medians, and the median of the per-pair differences [95 % interval]; "
          "the null case's row is what the design makes of no difference):", "",
          "| case | machine: plain → gated | machine: difference | containerd: difference | journald: difference | the gates' own CPU (median) |",
          "|---|---|---|---|---|---|"]
for k, c in C.items():
    mc = c["cpu_per_start_ms"]
    own = f"{c['wrapper_cpu_ms']['median']:.2f}" if c["gates"] else "—"
    lines.append(f"| {label.get(k, k)} | {mc['machine']['plain_median']:.2f} → {mc['machine']['gated_median']:.2f} | {diff_text(mc['machine'])} | "
                 f"{diff_text(mc['containerd'])} | {diff_text(mc['journald'])} | {own} |")
def per_gate_table(title, columns, cells):
    """A table of one row per case and gate; `cells` gives a row's cells, or None to skip it."""
    out = ["", title, "", "| case | gate | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for k, c in C.items():
        for g, v in c["per_gate"].items():
            row = cells(v)
            if row is not None:
                out.append(f"| {label.get(k, k)} | {g} | " + " | ".join(row) + " |")
    return out
lines += per_gate_table(
    "Per gate (CPU incl. the verification child; in-gate time: the shim from admission to hand-over, the runc gate from main to hand-over; page faults: from the fork, the gate's exec and its verification child included; waits: voluntary context switches; verifications: starts that forked the sandboxed verification child):",
    ["CPU median / p95 (ms)", "peak RSS (MiB)", "in-gate time median (µs)", "page faults median", "waits median", "verifications"],
    lambda v: [f"{v['cpu_ms']['median']:.2f} / {v['cpu_ms']['p95']:.2f}", f"{v['peak_rss_mib']['max']:.1f}", f"{v['total_us_median']:.0f}",
               f"{v['minflt_median']:.0f}", f"{v['nvcsw_median']:.0f}", str(v['sandboxed_verifications'])])
lines += per_gate_table(
    "Where each gate's time goes (median µs per start; verify = fork of the sandbox child to its reaping, on a verdict-cache miss; the runc gate's binding check is in its total, not in a phase):",
    ["policy", "containerd lookup", "decision (all)", "of which: cache key", "cache read", "verify (sandboxed)", "journal", "total"],
    lambda v: [f"{v['phases_us_median'][p]:.0f}" for p in phases])
lines += per_gate_table(
    "The verification child's steps (median µs over the starts that forked one; wall time on the monotonic clock, read by the gate and the child: fork = the gate's `fork` call; child start = from that call until the child ran; exit = from the end of its work until the gate saw its result's pipe close; reap = from then until `waitpid` returned: the child's exit, its memory torn down):",
    ["fork", "child start", "confine (capabilities, seccomp)", "work (verification, result serialized)", "exit", "reap"],
    lambda v: None if v["child_steps_us_median"] is None else [f"{v['child_steps_us_median'][p]:.0f}" for p in child_steps])
lines += ["", "The runc gate under `strace -ttt` (µs from its exec to each marker; strace inflates syscalls, read the split):", ""]
for tl in res["runc_gate_strace_timeline_us"]:
    lines.append(f"- {tl['start']}: " + ", ".join(f"{k} {v}" for k, v in tl.items() if k != "start"))
conc_txt = ", ".join(f"{n} {t} → {v['errors']} errors ({v['wall_ms']} ms)" for n, d in res["concurrent"].items() for t, v in d.items())
if res["concurrent"]:
    lines += ["", f"Concurrent starts through the shim: {conc_txt}. Verdict temporary files left: {tmp_left}. "
              f"File locks taken by {sampled} wrapper starts traced with strace: {locks}. Gate processes left resident: {res['resident_wrapper_processes']}."]
else:
    lines += ["", f"Gate processes left resident: {res['resident_wrapper_processes']}."]
if not smoke:
    lines += ["", "| target | limit | measured | met |", "|---|---|---|---|"]
    for t, l, mv, ok in targets:
        mv = f"{mv:.3f}" if isinstance(mv, float) else mv
        lines.append(f"| {t} | {l} | {mv} | {'yes' if ok else '**no**'} |")
open(f"{out}/starts.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
if errors:
    sys.exit(1)
if not smoke and not all(t[3] for t in targets):
    sys.exit(3)
PY
exit "$status"
