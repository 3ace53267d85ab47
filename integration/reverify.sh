#!/usr/bin/env bash
# Revocation reaching running containers (`portcullis reverify`) on real
# parts: a private containerd 1.6 (PC_CONTAINERD_VERSION=2.4.2: containerd
# 2.4.2 from integration/tools.sh) with the shim runtime
# (io.containerd.portcullis.v2), the machine's journald and docker-registry
# on loopback, images signed with keys by portcullis-testsign.
#
# Cases: two containers started through the gate, each signed by its own
# key; reverify says both still hold (exit 0, digests from the gate's
# records, also with --json); the tag of one is moved to another image (the
# digest the gate allowed is still the one decided for); one key is replaced
# in the policy: reverify reports 'would refuse' for its container (exit 1),
# a REVOKED journal record with its fields, the container keeps running and
# the other is untouched; under revoked = "stop" the container is stopped
# (SIGKILL after the grace period: busybox as PID 1 ignores SIGTERM) and
# recorded, the other still runs. The other's key is then replaced too
# (report): `portcullis evidence` lists app as revoked then stopped and
# other as revoked and still running, fails the step revoked-stopped,
# verifies and validates against the schema. Deciding ahead: after a policy
# change reverify decides every image on the node, so the next start of the
# signed one is a verdict-cache hit (a miss with --no-decide-ahead, the
# control), and the moved, unfetched tag is named as one whose next start
# would be refused. Then the cost of reverify per running container with 1,
# 10 and 30 running containers (printed, never asserted).
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
pc_use_containerd_tools

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
KEYS=$PC_WORK/keys
REVOKED_ID=$PC_MID_REVOKED
STOPPED_ID=$PC_MID_REVOKED_STOPPED
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"

echo "# keys, images, signatures"
for k in release other replacement; do
  "$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/$k.key" --public "$KEYS/$k.pub" >/dev/null
done
APP_DIGEST=$(pc_push_image rv/app:v1 rv-app | tail -n 1)
OTHER_DIGEST=$(pc_push_image rv/other:v1 rv-other | tail -n 1)
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/rv/app:v1" >/dev/null
"$SIGN" sign --plain-http --key "$KEYS/other.key" "$R/rv/other:v1" >/dev/null
for spec in rv/app:v1 rv/other:v1; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >>"$PC_WORK/logs/fetch.log" 2>&1
done

# policy APP_KEY [EXTRA TOP-LEVEL LINE] [OTHER_KEY]
policy() {
  write_policy <<EOF
mode = "enforce"
default = "deny"
$2

[[rule]]
name = "app"
images = ["$R/rv/app"]
[[rule.signer]]
key = "$KEYS/$1.pub"

[[rule]]
name = "other"
images = ["$R/rv/other"]
[[rule.signer]]
key = "$KEYS/${3:-other}.pub"
EOF
}
policy release ""

# task_status ID: RUNNING, STOPPED, PAUSED… or nothing when there is no task.
task_status() {
  pc_ctr tasks ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'
}

# reverify ARGS...: sets OUT and RC.
reverify() {
  set +e
  OUT=$(timeout 120 "$PC" reverify --address "$PC_CONTAINERD_SOCK" "$@" 2>&1)
  RC=$?
  set -e
}

# reverify_as_unit ARGS...: reverify as portcullis-reverify.service runs it
# (its system-call filter, address families, no capabilities), applied by
# unit-seccomp.py since systemd is not PID 1 here; sets OUT and RC.
reverify_as_unit() {
  set +e
  OUT=$(timeout 120 /usr/bin/python3 "$HERE/unit-seccomp.py" "$PC_REPO_ROOT/systemd/portcullis-reverify.service" -- \
    "$PC" reverify --address "$PC_CONTAINERD_SOCK" "$@" 2>&1)
  RC=$?
  set -e
}

# rv_field ID FIELD MESSAGE_ID: FIELD of the newest reverify record of that id for container ID.
rv_field() {
  local id=$1 field=$2 mid=$3 out
  for _ in $(seq 1 50); do
    out=$(journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis-reverify "MESSAGE_ID=$mid" \
      "PORTCULLIS_CONTAINER_ID=$id" 2>/dev/null | tail -n 1 | jq -r --arg f "$field" '.[$f] // empty')
    [[ -n $out ]] && { printf '%s\n' "$out"; return 0; }
    sleep 0.1
  done
  return 1
}

# start_detached ID IMAGE: a long-running container through the gate.
start_detached() {
  pc_ctr run -d --runtime "$RUNTIME" "$R/$2" "$1" /bin/busybox sleep 3600 >/dev/null 2>>"$PC_WORK/logs/ctr.log"
}

echo "# two containers started through the gate"
T_START=$(date +%s)
APP=$(new_id rv-app)
OTHER=$(new_id rv-other)
start_detached "$APP" rv/app:v1
start_detached "$OTHER" rv/other:v1
[[ $(task_status "$APP") == RUNNING && $(task_status "$OTHER") == RUNNING ]] &&
  ok "both signed containers run through the gate" ||
  not_ok "both run" "app: $(task_status "$APP"), other: $(task_status "$OTHER")"
[[ $(journal_field "$APP" PORTCULLIS_VERDICT || true) == allow ]] &&
  ok "the gate recorded allow for $APP" || not_ok "gate allow record for $APP"

echo "# reverify under the policy the containers started under"
reverify
echo "$OUT" | sed 's/^/#   /'
[[ $RC -eq 0 ]] && ok "reverify exits 0 when every verdict holds" || not_ok "reverify exit 0" "rc=$RC: $OUT"
grep -qF "ok: $PC_NS/$APP $R/rv/app:v1@$APP_DIGEST (digest from journal, rule app): signature by" <<<"$OUT" &&
  ok "app: ok, digest from the gate's journal record" || not_ok "app ok line" "$OUT"
grep -qF "ok: $PC_NS/$OTHER $R/rv/other:v1@$OTHER_DIGEST (digest from journal, rule other)" <<<"$OUT" &&
  ok "other: ok" || not_ok "other ok line" "$OUT"
reverify --namespace "$PC_NS" --json
if [[ $RC -eq 0 ]] && jq -e --arg a "$APP" --arg d "$APP_DIGEST" '
    .revoked == "report" and
    ([.containers[] | select(.container_id == $a)][0] | .status == "ok" and .digest_source == "journal"
      and .decision.image_digest == $d and .decision.verdict_cache == "bypass")' <<<"$OUT" >/dev/null; then
  ok "--json: status ok, digest source journal, verdict cache bypassed"
else
  not_ok "--json report" "rc=$RC: $OUT"
fi
reverify --namespace no-such-namespace
[[ $RC -eq 0 ]] && grep -qF "0 running container(s) in 1 namespace(s)" <<<"$OUT" &&
  ok "--namespace scopes the run (an empty namespace holds)" || not_ok "--namespace scope" "rc=$RC: $OUT"

echo "# as the shipped unit runs it: its seccomp filter lets the verification sandbox confine itself"
reverify_as_unit --namespace "$PC_NS" --json
if [[ $RC -eq 0 ]] && jq -e --arg a "$APP" --arg o "$OTHER" '
    [.containers[] | select(.container_id == $a or .container_id == $o)
      | select(.status == "ok" and .decision.kind == "verified" and .decision.verdict_cache == "bypass")]
    | length == 2' <<<"$OUT" >/dev/null; then
  # reverify verifies only in the sandboxed child (sandbox::require): a
  # child that cannot confine itself makes each decision a refusal.
  ok "under portcullis-reverify.service's filter: both hold, each verified again (in the sandboxed child)"
else
  not_ok "reverify under the unit's filter" "rc=$RC: ${OUT:0:2000}"
fi

echo "# the tag moves to another image: the digest decided for is still the one started"
pc_push_image rv/app:v1 rv-app-moved >/dev/null
pc_pull rv/app:v1 >/dev/null
NEW_DIGEST=$(pc_ctr images ls | awk -v r="$R/rv/app:v1" '$1 == r { print $3 }')
reverify --namespace "$PC_NS"
if [[ $NEW_DIGEST != "$APP_DIGEST" && $RC -eq 0 ]] &&
  grep -qF "ok: $PC_NS/$APP $R/rv/app:v1@$APP_DIGEST (digest from journal" <<<"$OUT"; then
  ok "moved tag ($NEW_DIGEST): still decided for the started digest"
else
  not_ok "moved tag" "new $NEW_DIGEST, started $APP_DIGEST, rc=$RC: $OUT"
fi

echo "# the app key is removed from the policy (another key in its place)"
policy replacement ""
reverify
echo "$OUT" | sed 's/^/#   /'
[[ $RC -eq 1 ]] && ok "reverify exits 1 when a verdict no longer holds" || not_ok "reverify exit 1" "rc=$RC: $OUT"
grep -qF "would refuse: $PC_NS/$APP $R/rv/app:v1@$APP_DIGEST (digest from journal, rule app):" <<<"$OUT" &&
  ok "app: would refuse" || not_ok "app would-refuse line" "$OUT"
grep -qF "ok: $PC_NS/$OTHER " <<<"$OUT" && ok "other: still ok" || not_ok "other still ok" "$OUT"
problems=()
for kv in "SYSLOG_IDENTIFIER=portcullis-reverify" "PORTCULLIS_NAMESPACE=$PC_NS" \
  "PORTCULLIS_CONTAINER_ID=$APP" "PORTCULLIS_IMAGE_REF=$R/rv/app:v1" \
  "PORTCULLIS_IMAGE_DIGEST=$APP_DIGEST" "PORTCULLIS_RULE=app" \
  "PORTCULLIS_REJECTION=not-the-signer" "PORTCULLIS_REVERIFY=would-refuse" \
  "PORTCULLIS_DIGEST_SOURCE=journal" "PORTCULLIS_REVOKED_ACTION=report" "PRIORITY=3"; do
  got=$(rv_field "$APP" "${kv%%=*}" "$REVOKED_ID" || true)
  [[ $got == "${kv#*=}" ]] || problems+=("${kv%%=*} is '$got', expected '${kv#*=}'")
done
reason=$(rv_field "$APP" PORTCULLIS_REASON "$REVOKED_ID" || true)
[[ $reason == *"rule \"app\""* ]] || problems+=("reason: $reason")
if ((${#problems[@]})); then not_ok "REVOKED record ($REVOKED_ID)" "${problems[@]}"; else
  ok "REVOKED record $REVOKED_ID: namespace, container, ref, digest, rule, not-the-signer; reason: $reason"
fi
[[ -z $(rv_field "$OTHER" MESSAGE_ID "$REVOKED_ID" 2>/dev/null || true) ]] &&
  ok "no record for the container that still holds" || not_ok "other has no REVOKED record"
[[ $(task_status "$APP") == RUNNING && $(task_status "$OTHER") == RUNNING ]] &&
  ok "revoked = report (default): both keep running" ||
  not_ok "report leaves them running" "app: $(task_status "$APP"), other: $(task_status "$OTHER")"

echo "# revoked = \"stop\""
policy replacement 'revoked = "stop"'
T0=$(date +%s%N)
reverify --grace 2s
T1=$(date +%s%N)
echo "$OUT" | sed 's/^/#   /'
[[ $RC -eq 1 ]] && ok "reverify exits 1 after stopping" || not_ok "stop exit 1" "rc=$RC: $OUT"
grep -qF "stopped: $PC_NS/$APP " <<<"$OUT" && grep -qF "[stopped by SIGKILL]" <<<"$OUT" &&
  ok "app: stopped (SIGKILL after the 2 s grace; $(((T1 - T0) / 1000000)) ms)" || not_ok "stopped line" "$OUT"
st=$(task_status "$APP")
[[ $st == STOPPED || -z $st ]] && ok "app's task is stopped ($st)" || not_ok "app's task stopped" "status: $st"
[[ $(task_status "$OTHER") == RUNNING ]] && ok "other: untouched, still running" ||
  not_ok "other still running" "$(task_status "$OTHER")"
problems=()
for kv in "PORTCULLIS_REVERIFY=stopped" "PORTCULLIS_STOP_SIGNAL=SIGKILL" "PORTCULLIS_NAMESPACE=$PC_NS" \
  "PORTCULLIS_IMAGE_DIGEST=$APP_DIGEST" "PORTCULLIS_REJECTION=not-the-signer" "PORTCULLIS_RULE=app"; do
  got=$(rv_field "$APP" "${kv%%=*}" "$STOPPED_ID" || true)
  [[ $got == "${kv#*=}" ]] || problems+=("${kv%%=*} is '$got', expected '${kv#*=}'")
done
[[ $(rv_field "$APP" PORTCULLIS_REVOKED_ACTION "$REVOKED_ID" || true) == stop ]] ||
  problems+=("the REVOKED record before the stop lacks PORTCULLIS_REVOKED_ACTION=stop")
if ((${#problems[@]})); then not_ok "REVOKED_STOPPED record ($STOPPED_ID)" "${problems[@]}"; else
  ok "REVOKED_STOPPED record $STOPPED_ID: stopped by SIGKILL, with the rule and class"
fi
reverify
[[ $RC -eq 0 ]] && ok "afterwards every running container holds (exit 0)" || not_ok "exit 0 afterwards" "rc=$RC: $OUT"
pc_ctr tasks delete "$APP" >/dev/null 2>&1 || true
pc_ctr containers rm "$APP" >/dev/null 2>&1 || true

echo "# the evidence pack lists the containers that ran on after their verdict stopped holding"
policy replacement "" replacement
reverify
[[ $RC -eq 1 ]] && grep -qF "would refuse: $PC_NS/$OTHER " <<<"$OUT" &&
  ok "other's key replaced too (revoked = report): other would refuse, keeps running" ||
  not_ok "other revoked" "rc=$RC: $OUT"
# The step needs a heartbeat of this node in or just before the period
# (without one the absence of reverify records shows nothing): state one
# here, as the packaged timer does, rather than rely on an older record in
# the machine's journal.
hb=$("$PC" heartbeat --json 2>&1) && ok "heartbeat stated for the period" || not_ok "heartbeat" "$hb"
EV=$PC_WORK/evidence-revoked
rm -rf "$EV"
set +e
"$PC" evidence --from "@$T_START" --to now -o "$EV" --address "$PC_CONTAINERD_SOCK" --this-policy-only \
  --node rv-node >"$PC_WORK/logs/evidence-revoked.txt" 2>&1
ev_rc=$?
set -e
E=$EV/evidence.json
if [[ -s $E ]]; then
  app_j=$(jq -c --arg c "$APP" '[.revoked[] | select(.container_id == $c)]' "$E")
  other_j=$(jq -c --arg c "$OTHER" '[.revoked[] | select(.container_id == $c)]' "$E")
  [[ $(jq 'length' <<<"$app_j") -eq 1 &&
    $(jq -r --arg d "$APP_DIGEST" '.[0] | [.state, .stop, .image_digest == $d, .rejection, .stopped_at == .ran_until, .stopped_at > .since, .rule] | join(" ")' <<<"$app_j") == "stopped SIGKILL true not-the-signer true true app" ]] &&
    ok "pack: app revoked then stopped (by SIGKILL at $(jq -r '.[0].stopped_at' <<<"$app_j"), no longer held from $(jq -r '.[0].since' <<<"$app_j"))" ||
    not_ok "pack lists app as stopped" "$app_j"
  [[ $(jq 'length' <<<"$other_j") -eq 1 &&
    $(jq -r --arg d "$OTHER_DIGEST" --slurpfile p "$E" '.[0] | [.state, (.stopped_at == null), .image_digest == $d, .ran_until == $p[0].period.to, .records >= 1] | join(" ")' <<<"$other_j") == "running true true true true" ]] &&
    ok "pack: other revoked and still running (ran until the period's end, $(jq -r '.[0].records' <<<"$other_j") reverify record(s))" ||
    not_ok "pack lists other as running" "$other_j"
  [[ $(jq -r '[.summary.revoked, .summary.revoked_running] | join(" ")' "$E") == "2 1" ]] &&
    ok "pack summary: 2 revoked, 1 still running" || not_ok "revoked summary" "$(jq -c .summary "$E")"
  [[ $ev_rc -eq 1 && $(jq -r --arg c "$OTHER" '.steps[] | select(.id == "revoked-stopped") | [.status, (.detail | contains($c))] | join(" ")' "$E") == "fail true" ]] &&
    ok "audit step revoked-stopped fails, naming other (exit 1)" ||
    not_ok "revoked-stopped step" "rc=$ev_rc $(jq -c '.steps[] | select(.id == "revoked-stopped")' "$E")"
  grep -q 'id="revoked"' "$EV/report.html" && grep -qF "$APP" "$EV/report.html" && grep -qF "$OTHER" "$EV/report.html" &&
    ok "report.html: the revoked section lists both" || not_ok "report revoked section"
  v=$("$PC" evidence verify "$EV" 2>&1) && ok "evidence verify: $v" || not_ok "evidence verify of the revoked pack" "$v"
  # other shown as stopped, manifest re-made: the list no longer follows from the records
  TV=$PC_WORK/evidence-revoked-tampered
  rm -rf "$TV"
  cp -r "$EV" "$TV"
  jq --arg c "$OTHER" '(.revoked[] | select(.container_id == $c) | .state) = "stopped"' "$E" >"$TV/evidence.json"
  (cd "$TV" && find . -type f ! -name MANIFEST.sha256 | sed 's|^\./||' | sort | xargs sha256sum >MANIFEST.sha256)
  set +e
  tv=$("$PC" evidence verify "$TV" 2>&1)
  trc=$?
  set -e
  ((trc == 1)) && grep -q "revoked" <<<"$tv" && ok "evidence verify catches other shown as stopped (manifest re-made)" ||
    not_ok "revoked list tamper caught" "rc=$trc $tv"
  python3 - "$PC_REPO_ROOT/docs/evidence.schema.json" "$E" <<'PY2' && ok "the pack validates against docs/evidence.schema.json" || not_ok "schema"
import json, sys
import jsonschema
errors = list(jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).iter_errors(json.load(open(sys.argv[2]))))
for e in errors[:5]:
    print("/".join(map(str, e.absolute_path)), e.message[:300])
sys.exit(1 if errors else 0)
PY2
else
  not_ok "evidence pack written" "rc=$ev_rc $(cat "$PC_WORK/logs/evidence-revoked.txt")"
fi
policy replacement ""

echo "# deciding ahead: after a policy change, the next start of each image on the node finds its pass"
# The policy's bytes change (a comment), so every stored pass is for another
# policy digest. rv/app:v1 now names the moved, unfetched image.
policy replacement "# decided ahead, control"
reverify --namespace "$PC_NS" --no-decide-ahead --json
[[ $RC -eq 0 ]] && jq -e 'has("ahead") | not' <<<"$OUT" >/dev/null &&
  ok "--no-decide-ahead: no image decided ahead" || not_ok "--no-decide-ahead" "rc=$RC: ${OUT:0:2000}"
id=$(new_id rv-cold)
pc_ctr run --rm --runtime "$RUNTIME" "$R/rv/other:v1" "$id" /bin/busybox true >/dev/null 2>>"$PC_WORK/logs/ctr.log" || true
vc=$(journal_field "$id" PORTCULLIS_VERDICT_CACHE || true)
[[ $vc == miss ]] && ok "control: without it, the first start under the changed policy verifies at the start (verdict cache $vc)" ||
  not_ok "control start is a miss" "verdict cache '$vc', verdict '$(journal_field "$id" PORTCULLIS_VERDICT || true)'"
policy replacement "# decided ahead"
reverify --namespace "$PC_NS" --json
if [[ $RC -eq 0 ]] && jq -e --arg o "$R/rv/other:v1" --arg od "$OTHER_DIGEST" --arg a "$R/rv/app:v1" --arg ad "$NEW_DIGEST" '
    (.ahead.images | length) == 2 and
    ([.ahead.images[] | select(.image == $o)][0] | .status == "verified" and .digest == $od and .rule == "other") and
    ([.ahead.images[] | select(.image == $a)][0] | .status == "would-refuse" and .digest == $ad
      and .rejection == "nothing-cached" and (.reason | contains("portcullis fetch")))' <<<"$OUT" >/dev/null; then
  ok "reverify decides ahead: rv/other:v1 verified now ($(jq -r --arg o "$R/rv/other:v1" '.ahead.images[] | select(.image == $o) | .duration_us / 1000' <<<"$OUT") ms, lookup included), rv/app:v1 (moved, unfetched) would refuse: nothing cached"
else
  not_ok "images decided ahead" "rc=$RC: $(jq -c '.ahead' <<<"$OUT" 2>/dev/null || echo "${OUT:0:2000}")"
fi
id=$(new_id rv-ahead)
pc_ctr run --rm --runtime "$RUNTIME" "$R/rv/other:v1" "$id" /bin/busybox true >/dev/null 2>>"$PC_WORK/logs/ctr.log" || true
vc=$(journal_field "$id" PORTCULLIS_VERDICT_CACHE || true)
[[ $vc == hit && $(journal_field "$id" PORTCULLIS_VERDICT || true) == allow ]] &&
  ok "the next start of rv/other:v1 is allowed on the pass decided ahead (verdict cache $vc)" ||
  not_ok "start after deciding ahead is a hit" "verdict cache '$vc'"
reverify --namespace "$PC_NS"
echo "$OUT" | sed 's/^/#   /'
if [[ $RC -eq 0 ]] &&
  grep -qF "image would refuse at its next start: $R/rv/app:v1@$NEW_DIGEST (namespace $PC_NS, rule app): no signatures cached" <<<"$OUT" &&
  grep -qE "^2 image\(s\) decided ahead: 1 already held, 0 verified now .*, 1 whose next start would not pass; [0-9]+ ms$" <<<"$OUT"; then
  ok "run again: rv/other:v1 already held; the unfetched image is named with its fix"
else
  not_ok "second run's text" "rc=$RC: $OUT"
fi
policy replacement ""

echo "# cost of reverify per running container (printed, not asserted)"
BENCH=()
for n in 1 10 30; do
  while ((${#BENCH[@]} + 1 < n)); do
    id=$(new_id rv-bench)
    start_detached "$id" rv/other:v1
    BENCH+=("$id")
  done
  running=$((${#BENCH[@]} + 1))
  reverify --namespace "$PC_NS" --json --no-decide-ahead
  ms=$(jq -r '.elapsed_ms' <<<"$OUT" 2>/dev/null || echo "?")
  held=$(jq -r '[.containers[] | select(.status == "ok")] | length' <<<"$OUT" 2>/dev/null || echo "?")
  decide_ms=$(jq -r '[.containers[].decision.duration_us] | add / 1000 | floor' <<<"$OUT" 2>/dev/null || echo "?")
  if [[ $RC -eq 0 && $held == "$running" ]]; then
    ok "reverify of $running running container(s): $ms ms, $(awk -v t="$ms" -v n="$running" 'BEGIN { printf "%.1f", t / n }') ms/container (deciding: $decide_ms ms in all)"
  else
    not_ok "reverify of $running containers" "rc=$RC held=$held: ${OUT:0:2000}"
  fi
done

summary
