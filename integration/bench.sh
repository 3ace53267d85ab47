#!/usr/bin/env bash
# Whole-start benchmark: `ctr run --rm` of a trivial signed image through
# io.containerd.runc.v2 (A) and io.containerd.portcullis.v2 (B), interleaved
# A B A B ... on the same private containerd, so both see the same machine
# state. Cases: key signature, key signature + SLSA provenance, keyless
# signature (Fulcio certificate chain + Rekor entry, from the local stand-in
# of integration/keyless), each cold (verdict cache emptied before every
# start) and warm. Reports median and p95 wall time of each, the per-pair
# ratio B/A, the wrapper's own CPU time (its verification child included)
# and peak memory per start, where the wrapper's time goes (policy, lookup,
# verdict-cache key and read, sandboxed verification, journal), N concurrent
# starts (cold and warm) with their error count, a lock sample (strace of
# sampled wrapper starts: flock/fcntl locks taken), wrapper processes left
# resident, and /proc/loadavg before and after.
#
#   bash integration/bench.sh [PAIRS]   full run (default 30 pairs, N = 16 and 64);
#                                       checks the issue's targets, exit 3 if one is missed
#   bash integration/bench.sh --smoke   2 pairs per case, N = 4 and 8, no target check
#
# Run as root after setup.sh (and keyless/install.sh, attest/install.sh).
# Exit status: 0 ok, 1 a start failed or the set-up broke, 3 (full run only)
# all starts worked but a target was missed. Writes target/bench/starts.json
# and target/bench/starts.md. Timings are measurements, never assertions of
# the test suite.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
SMOKE=0
PAIRS=30
CONC=(16 64)
case "${1:-}" in
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

echo "# building (release)"
(cd "$ROOT" && cargo build --release --quiet --bins && cargo build --quiet -p portcullis-testsign)
PC_BIN_DIR=$ROOT/target/release
SIGN=$ROOT/target/debug/portcullis-testsign
OUT=$ROOT/target/bench
mkdir -p "$OUT"
rm -f "$OUT"/rusage-*.jsonl

STANDIN_PID=
cleanup() {
  [[ -n $STANDIN_PID ]] && kill "$STANDIN_PID" 2>/dev/null
  pc_stop_all
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
node "$HERE/keyless/standin.mjs" --url-file "$KL/url" --trusted-root-out "$KL/trusted_root.json" \
  >"$PC_WORK/logs/standin.log" 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 100); do [[ -s $KL/url && -s $KL/trusted_root.json ]] && break; sleep 0.1; done
KL_ID=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
KL_ISS=https://token.actions.githubusercontent.com
pc_manifest_raw bench/keyless:1 >"$KL/manifest"
node "$HERE/keyless/sign-image.mjs" --standin-url "$(cat "$KL/url")" --artifact "$KL/manifest" \
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
ERRORS=0
run_once() { # RUNTIME IMAGE -> prints wall µs, fails if the start failed
  local t0 t1 id=b$RANDOM$RANDOM
  t0=$(now_ns)
  if ! pc_ctr run --rm --runtime "$1" "$R/$2" "$id" /bin/true >"$PC_WORK/logs/last-run.log" 2>&1; then
    echo "# start failed ($1 $2):" >&2
    cat "$PC_WORK/logs/last-run.log" >&2
    return 1
  fi
  t1=$(now_ns)
  echo $(((t1 - t0) / 1000))
}

LOAD_BEFORE=$(cat /proc/loadavg)
CASES=(sig-cold sig-warm prov-cold prov-warm keyless-cold keyless-warm)
declare -A WALL
for case in "${CASES[@]}"; do
  image=bench/${case%-*}:1
  # warm-up: one of each, not recorded
  run_once io.containerd.runc.v2 "$image" >/dev/null || ERRORS=$((ERRORS + 1))
  run_once io.containerd.portcullis.v2 "$image" >/dev/null || ERRORS=$((ERRORS + 1))
  : >"$PORTCULLIS_RUSAGE_LOG"
  a=() b=()
  for _ in $(seq 1 "$PAIRS"); do
    ta=$(run_once io.containerd.runc.v2 "$image") || { ERRORS=$((ERRORS + 1)) && continue; }
    # cold: no cached verdict, every start verifies; warm: the verdict cache answers
    [[ $case == *-cold ]] && rm -rf "$PORTCULLIS_STATE_DIR/verdicts"
    tb=$(run_once io.containerd.portcullis.v2 "$image") || { ERRORS=$((ERRORS + 1)) && continue; }
    a+=("$ta") b+=("$tb")
  done
  WALL[$case.a]="${a[*]}"
  WALL[$case.b]="${b[*]}"
  cp "$PORTCULLIS_RUSAGE_LOG" "$OUT/rusage-$case.jsonl"
  echo "# $case: ${#b[@]} of $PAIRS pairs done"
done

conc() { # N cold|warm: N concurrent portcullis starts of the signed image; prints "errors wall_ms"
  local n=$1 t0 t1 errs=0 pids=() i
  [[ $2 == cold ]] && rm -rf "$PORTCULLIS_STATE_DIR/verdicts"
  t0=$(now_ns)
  for i in $(seq 1 "$n"); do
    pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$R/bench/sig:1" "c$n-$i-$RANDOM" /bin/true \
      >"$PC_WORK/logs/conc-$n-$i.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || errs=$((errs + 1)); done
  t1=$(now_ns)
  echo "$errs $(((t1 - t0) / 1000000))"
}
CONC_RES=()
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
tmp_left=$(find "$PORTCULLIS_STATE_DIR/verdicts" -name '.tmp-*' 2>/dev/null | wc -l)

# Lock sample: two cold and two warm starts of the wrapper under strace.
rm -rf "$PORTCULLIS_STATE_DIR/verdicts"
for _ in 1 2 3 4; do
  run_once io.containerd.pcstrace.v2 bench/prov:1 >/dev/null || ERRORS=$((ERRORS + 1))
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

sleep 1
# wrapper processes of THIS containerd still alive (exec'd shims show as runc's)
resident=$(pgrep -r R,S,D -f "containerd-shim-portcullis-v2.*$PC_CONTAINERD_SOCK" | wc -l || true)
LOAD_AFTER=$(cat /proc/loadavg)

status=0
python3 - "$OUT" "$PAIRS" "$SMOKE" "$ERRORS" "$resident" "$tmp_left" "$sampled" "$locks" \
  "$LOAD_BEFORE" "$LOAD_AFTER" "${CONC_RES[*]}" \
  "${WALL[sig-cold.a]}" "${WALL[sig-cold.b]}" "${WALL[sig-warm.a]}" "${WALL[sig-warm.b]}" \
  "${WALL[prov-cold.a]}" "${WALL[prov-cold.b]}" "${WALL[prov-warm.a]}" "${WALL[prov-warm.b]}" \
  "${WALL[keyless-cold.a]}" "${WALL[keyless-cold.b]}" "${WALL[keyless-warm.a]}" "${WALL[keyless-warm.b]}" \
  <<'PY' || status=$?
import json, statistics, sys, platform, os, subprocess, datetime
(out, pairs, smoke, errors, resident, tmp_left, sampled, locks, load_before, load_after, conc) = sys.argv[1:12]
pairs, smoke, errors = int(pairs), smoke == "1", int(errors)
walls = sys.argv[12:]
names = ["sig-cold", "sig-warm", "prov-cold", "prov-warm", "keyless-cold", "keyless-warm"]
def pct(xs, p):
    if not xs: return float("nan")
    xs = sorted(xs); k = (len(xs) - 1) * p; f = int(k); c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)
med = lambda xs: statistics.median(xs) if xs else float("nan")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
res = {"pairs": pairs, "smoke": smoke,
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
       "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "memory": mem,
       "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
       "containerd": subprocess.run(["containerd","--version"],capture_output=True,text=True).stdout.strip()},
       "loadavg": {"before": load_before, "after": load_after},
       "errors": errors, "cases": {}}
phases = ["policy_us", "lookup_us", "decide_us", "key_us", "cache_read_us", "verify_us", "journal_us", "total_us"]
for i, name in enumerate(names):
    a = [int(x)/1000 for x in walls[2*i].split()]; b = [int(x)/1000 for x in walls[2*i+1].split()]
    ratios = [y/x for x, y in zip(a, b)]
    ru = [json.loads(l) for l in open(f"{out}/rusage-{name}.jsonl")]
    cpu = [(r["user_us"]+r["sys_us"]+r.get("child_user_us",0)+r.get("child_sys_us",0))/1000 for r in ru]
    rss = [r["max_rss_kib"]/1024 for r in ru]
    crss = [r.get("child_max_rss_kib",0)/1024 for r in ru]
    res["cases"][name] = {
        "pairs": len(b),
        "runc_ms": {"median": med(a), "p95": pct(a, .95)},
        "portcullis_ms": {"median": med(b), "p95": pct(b, .95)},
        "ratio": {"median": med(ratios), "p95": pct(ratios, .95), "pairs": [round(r, 4) for r in ratios]},
        "wrapper_cpu_ms": {"median": med(cpu), "p95": pct(cpu, .95), "n": len(cpu)},
        "wrapper_peak_rss_mib": {"max": max(rss, default=0), "median": med(rss)},
        "child_peak_rss_mib": {"max": max(crss, default=0)},
        "sandboxed_verifications": sum(1 for r in ru if r.get("sandbox") == "child"),
        "phases_us_median": {p: med([r.get(p, 0) for r in ru]) for p in phases},
    }
res["concurrent"] = {}
for item in conc.split():
    n, temp, e, ms = item.split(":")
    res["concurrent"].setdefault(n, {})[temp] = {"errors": int(e), "wall_ms": int(ms)}
res["verdict_tmp_files_left"] = int(tmp_left)
res["lock_sample"] = {"wrapper_starts_traced": int(sampled), "file_locks_taken": int(locks)}
res["resident_wrapper_processes"] = int(resident or 0)
C = res["cases"]
maxn = max(res["concurrent"], key=int)
targets = [
    ("median wall ratio, signature + provenance, cold", "<= 1.02", C["prov-cold"]["ratio"]["median"], C["prov-cold"]["ratio"]["median"] <= 1.02),
    ("median wall ratio, signature + provenance, warm", "<= 1.01", C["prov-warm"]["ratio"]["median"], C["prov-warm"]["ratio"]["median"] <= 1.01),
    ("wrapper CPU per start, cold (median, worst case)", "<= 3 ms", max(C[k]["wrapper_cpu_ms"]["median"] for k in C if k.endswith("cold")), max(C[k]["wrapper_cpu_ms"]["median"] for k in C if k.endswith("cold")) <= 3),
    ("wrapper CPU per start, warm (median, worst case)", "<= 1 ms", max(C[k]["wrapper_cpu_ms"]["median"] for k in C if k.endswith("warm")), max(C[k]["wrapper_cpu_ms"]["median"] for k in C if k.endswith("warm")) <= 1),
    ("wrapper peak memory (max)", "<= 16 MiB", max(C[k]["wrapper_peak_rss_mib"]["max"] for k in C), max(C[k]["wrapper_peak_rss_mib"]["max"] for k in C) <= 16),
    ("wrapper processes left resident", "0", res["resident_wrapper_processes"], res["resident_wrapper_processes"] == 0),
    (f"{maxn} concurrent starts, errors (cold + warm)", "0", sum(v["errors"] for v in res["concurrent"][maxn].values()), sum(v["errors"] for v in res["concurrent"][maxn].values()) == 0),
    ("file locks taken by sampled wrapper starts", "0", int(locks), int(locks) == 0 and int(sampled) > 0),
]
res["targets"] = None if smoke else [{"target": t, "limit": l, "measured": m, "met": ok} for t, l, m, ok in targets]
json.dump(res, open(f"{out}/starts.json", "w"), indent=1)
label = {"sig-cold": "signature (ECDSA P-256 key), cold", "sig-warm": "signature, warm verdict cache",
         "prov-cold": "signature + SLSA v1 provenance, cold", "prov-warm": "signature + provenance, warm",
         "keyless-cold": "keyless (certificate chain + Rekor), cold", "keyless-warm": "keyless, warm"}
m = res["machine"]
lines = [f"Run {res['date']}{' (smoke: not a measurement)' if smoke else ''}. Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory']} RAM, kernel {m['kernel']}, {m['containerd']}.",
         f"Load average (1/5/15 min) before: {load_before.split()[0:3]}, after: {load_after.split()[0:3]}.",
         f"`ctr run --rm` of a busybox image, {pairs} interleaved pairs per case; cold: the verdict cache is emptied before each start. Failed starts: {errors}.", "",
         "| case | runc median / p95 (ms) | portcullis median / p95 (ms) | ratio median / p95 | wrapper CPU median / p95 (ms) | wrapper peak RSS (MiB) |",
         "|---|---|---|---|---|---|"]
for k, c in C.items():
    lines.append(f"| {label[k]} | {c['runc_ms']['median']:.1f} / {c['runc_ms']['p95']:.1f} | {c['portcullis_ms']['median']:.1f} / {c['portcullis_ms']['p95']:.1f} | "
                 f"{c['ratio']['median']:.3f} / {c['ratio']['p95']:.3f} | {c['wrapper_cpu_ms']['median']:.2f} / {c['wrapper_cpu_ms']['p95']:.2f} | {c['wrapper_peak_rss_mib']['max']:.1f} |")
lines += ["", "Where the wrapper's time goes (median µs per start; verify = fork of the sandbox child to its reaping, on a verdict-cache miss):", "",
          "| case | policy | containerd lookup | decision (all) | of which: cache key | cache read | verify (sandboxed) | journal | total |", "|---|---|---|---|---|---|---|---|---|"]
for k, c in C.items():
    p = c["phases_us_median"]
    lines.append(f"| {label[k]} | {p['policy_us']:.0f} | {p['lookup_us']:.0f} | {p['decide_us']:.0f} | {p['key_us']:.0f} | {p['cache_read_us']:.0f} | {p['verify_us']:.0f} | {p['journal_us']:.0f} | {p['total_us']:.0f} |")
conc_txt = ", ".join(f"{n} {t} → {v['errors']} errors ({v['wall_ms']} ms)" for n, d in res["concurrent"].items() for t, v in d.items())
lines += ["", f"Concurrent starts through portcullis: {conc_txt}. Verdict temporary files left: {tmp_left}. "
          f"File locks taken by {sampled} wrapper starts traced with strace: {locks}. Wrapper processes left resident: {res['resident_wrapper_processes']}."]
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
