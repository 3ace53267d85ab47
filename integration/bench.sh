#!/usr/bin/env bash
# Whole-start benchmark: `ctr run --rm` of a trivial signed image through
# io.containerd.runc.v2 (A) and io.containerd.portcullis.v2 (B), interleaved
# A B A B ... on the same private containerd, so both see the same machine
# state. Reports median and p95 wall time of each, the per-pair ratio B/A,
# the wrapper's own CPU time and peak memory per start (getrusage just
# before the exec, via PORTCULLIS_RUSAGE_LOG), and N concurrent starts.
#
#   bash integration/bench.sh [PAIRS]        (default 30; run as root after setup.sh)
#
# Writes target/bench/starts.json and target/bench/starts.md. Timings are
# measurements, never assertions: nothing here fails on a slow machine.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
PAIRS=${1:-30}
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

trap pc_stop_all EXIT
pc_start_registry
pc_start_containerd
K=$PC_WORK/keys
mkdir -p "$K" "$PORTCULLIS_STATE_DIR"
"$SIGN" keygen --scheme ecdsa-p256 --private "$K/release.key" --public "$K/release.pub"
R=$PC_REGISTRY
sig_digest=$(pc_push_image bench/sig:1 bench-sig | tail -n 1)
prov_digest=$(pc_push_image bench/prov:1 bench-prov | tail -n 1)
"$SIGN" sign --plain-http --key "$K/release.key" "$R/bench/sig:1" >/dev/null
"$SIGN" sign --plain-http --key "$K/release.key" "$R/bench/prov:1" >/dev/null
bash "$HERE/attest/install.sh" >/dev/null
python3 "$HERE/attest/make_attestation.py" --key "$K/release.key" --subject-digest "$prov_digest" \
  --subject-name "$R/bench/prov" --predicate-version v1 --builder-id https://builder.example/slsa/v1 \
  --source-uri https://git.example/acme/app --out "$PC_WORK/att.json" >/dev/null
"$SIGN" attach-attestation --plain-http --envelope "$PC_WORK/att.json" "$R/bench/prov@$prov_digest" >/dev/null
for i in sig prov; do
  pc_pull "bench/$i:1" >/dev/null
  "$PC_BIN_DIR/portcullis" fetch --plain-http "$R/bench/$i:1" >/dev/null 2>&1
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
EOF
# The shim reads PORTCULLIS_RUSAGE_LOG from containerd's environment: restart
# containerd with it set.
pc_stop_containerd
export PORTCULLIS_RUSAGE_LOG=$PC_WORK/rusage.jsonl
PATH="$PC_BIN_DIR:$PATH" pc_start_containerd

now_ns() { date +%s%N; }
run_once() { # RUNTIME IMAGE -> prints wall ms, fails if the start failed
  local t0 t1 id=b$RANDOM$RANDOM
  t0=$(now_ns)
  pc_ctr run --rm --runtime "$1" "$R/$2" "$id" /bin/true >/dev/null 2>&1 || return 1
  t1=$(now_ns)
  echo $(((t1 - t0) / 1000))
}

declare -A WALL
for case in sig-cold sig-warm prov-cold prov-warm; do
  image=bench/${case%-*}:1
  # warm-up: one of each, not recorded
  run_once io.containerd.runc.v2 "$image" >/dev/null
  run_once io.containerd.portcullis.v2 "$image" >/dev/null
  : >"$PORTCULLIS_RUSAGE_LOG"
  a=() b=()
  for _ in $(seq 1 "$PAIRS"); do
    a+=("$(run_once io.containerd.runc.v2 "$image")")
    # cold: no cached verdict, every start verifies; warm: the verdict cache answers
    [[ $case == *-cold ]] && rm -rf "$PORTCULLIS_STATE_DIR/verdicts"
    b+=("$(run_once io.containerd.portcullis.v2 "$image")")
  done
  WALL[$case.a]="${a[*]}"
  WALL[$case.b]="${b[*]}"
  cp "$PORTCULLIS_RUSAGE_LOG" "$OUT/rusage-$case.jsonl"
  echo "# $case: $PAIRS pairs done"
done

conc() { # N: N concurrent portcullis starts of the signed image; prints "errors wall_ms"
  local n=$1 t0 t1 errs=0 pids=() i
  t0=$(now_ns)
  for i in $(seq 1 "$n"); do
    pc_ctr run --rm --runtime io.containerd.portcullis.v2 "$R/bench/sig:1" "c$n-$i-$RANDOM" /bin/true >/dev/null 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || errs=$((errs + 1)); done
  t1=$(now_ns)
  echo "$errs $(((t1 - t0) / 1000000))"
}
read -r c16_err c16_ms < <(conc 16)
read -r c64_err c64_ms < <(conc 64)
sleep 1
# wrapper processes of THIS containerd still alive (exec'd shims show as runc's)
resident=$(pgrep -r R,S,D -f "containerd-shim-portcullis-v2.*$PC_CONTAINERD_SOCK" | wc -l)

python3 - "$OUT" "$PAIRS" "${WALL[sig-cold.a]}" "${WALL[sig-cold.b]}" "${WALL[sig-warm.a]}" "${WALL[sig-warm.b]}" \
  "${WALL[prov-cold.a]}" "${WALL[prov-cold.b]}" "${WALL[prov-warm.a]}" "${WALL[prov-warm.b]}" \
  "$c16_err" "$c16_ms" "$c64_err" "$c64_ms" "$resident" <<'PY'
import json, statistics, sys, platform, os, subprocess
out, pairs = sys.argv[1], int(sys.argv[2])
cases = {"sig-cold": (sys.argv[3], sys.argv[4]), "sig-warm": (sys.argv[5], sys.argv[6]),
         "prov-cold": (sys.argv[7], sys.argv[8]), "prov-warm": (sys.argv[9], sys.argv[10])}
sys.argv = sys.argv[:3] + sys.argv[11:]
def pct(xs, p):
    xs = sorted(xs); k = (len(xs) - 1) * p; f = int(k); c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)
res = {"pairs": pairs, "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
       "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
       "containerd": subprocess.run(["containerd","--version"],capture_output=True,text=True).stdout.strip()},
       "cases": {}}
for name, (a, b) in cases.items():
    a = [int(x)/1000 for x in a.split()]; b = [int(x)/1000 for x in b.split()]
    ratios = [y/x for x, y in zip(a, b)]
    ru = [json.loads(l) for l in open(f"{out}/rusage-{name}.jsonl")]
    cpu = [(r["user_us"]+r["sys_us"])/1000 for r in ru]
    rss = [r["max_rss_kib"]/1024 for r in ru]
    res["cases"][name] = {
        "runc_ms": {"median": statistics.median(a), "p95": pct(a, .95)},
        "portcullis_ms": {"median": statistics.median(b), "p95": pct(b, .95)},
        "ratio": {"median": statistics.median(ratios), "p95": pct(ratios, .95)},
        "wrapper_cpu_ms": {"median": statistics.median(cpu), "p95": pct(cpu, .95), "n": len(cpu)},
        "wrapper_peak_rss_mib": {"max": max(rss), "median": statistics.median(rss)},
    }
res["concurrent"] = {"16": {"errors": int(sys.argv[3]), "wall_ms": int(sys.argv[4])},
                     "64": {"errors": int(sys.argv[5]), "wall_ms": int(sys.argv[6])}}
res["resident_wrapper_processes"] = int(sys.argv[7] or 0)
json.dump(res, open(f"{out}/starts.json", "w"), indent=1)
names = {"sig-cold": "signature (ECDSA P-256 key), cold", "sig-warm": "signature, warm verdict cache",
         "prov-cold": "signature + SLSA v1 provenance, cold", "prov-warm": "signature + provenance, warm"}
lines = [f"Machine: {res['machine']['cpu']}, {res['machine']['cpus']} CPUs, kernel {res['machine']['kernel']}, {res['machine']['containerd']}.",
         f"`ctr run --rm` of a busybox image, {pairs} interleaved pairs per case; cold: the verdict cache is emptied before each start.", "",
         "| case | runc median / p95 (ms) | portcullis median / p95 (ms) | ratio median / p95 | wrapper CPU median / p95 (ms) | wrapper peak RSS (MiB) |",
         "|---|---|---|---|---|---|"]
for k, c in res["cases"].items():
    lines.append(f"| {names[k]} | {c['runc_ms']['median']:.1f} / {c['runc_ms']['p95']:.1f} | {c['portcullis_ms']['median']:.1f} / {c['portcullis_ms']['p95']:.1f} | "
                 f"{c['ratio']['median']:.3f} / {c['ratio']['p95']:.3f} | {c['wrapper_cpu_ms']['median']:.2f} / {c['wrapper_cpu_ms']['p95']:.2f} | {c['wrapper_peak_rss_mib']['max']:.1f} |")
lines += ["", f"Concurrent starts through portcullis: 16 → {res['concurrent']['16']['errors']} errors ({res['concurrent']['16']['wall_ms']} ms), "
          f"64 → {res['concurrent']['64']['errors']} errors ({res['concurrent']['64']['wall_ms']} ms). Wrapper processes left resident: {res['resident_wrapper_processes']}."]
open(f"{out}/starts.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
