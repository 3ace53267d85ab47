# shellcheck shell=bash
# Helpers shared by the integration scripts (suite.sh, adversarial.sh,
# faults.sh, offline.sh, package-test.sh, evidence.sh): TAP lines, checks,
# journal look-ups, and one start through the gate.
# Source after env.sh; the caller sets R (the registry) and RUNTIME.

PASS=0
FAIL=0
FAILED=()
R=${R:-$PC_REGISTRY}
RUNTIME=${RUNTIME:-io.containerd.portcullis.v2}

ok() {
  PASS=$((PASS + 1))
  echo "ok $((PASS + FAIL)) - $1"
}
not_ok() {
  FAIL=$((FAIL + 1))
  FAILED+=("$1")
  echo "not ok $((PASS + FAIL)) - $1"
  shift
  local line
  for line in "$@"; do echo "#   $line"; done
}

# check NAME CMD...: ok when CMD succeeds, else not ok with its output.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "${out:0:2000}"; fi
}

# journal_field ID FIELD: the FIELD of the newest verdict record for container ID.
journal_field() {
  local id=$1 field=$2 out
  # Up to 20 s: journald is shared and lags under load (records seen after 5 s).
  for _ in $(seq 1 200); do
    out=$(journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis "PORTCULLIS_CONTAINER_ID=$id" 2>/dev/null |
      tail -n 1 | jq -r --arg f "$field" '.[$f] // empty')
    if [[ -n $out ]]; then
      printf '%s\n' "$out"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# journal_count ID: how many verdict records container ID has.
journal_count() {
  journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=portcullis "PORTCULLIS_CONTAINER_ID=$1" 2>/dev/null | grep -c . || true
}

# journal_caught_up: waits until journald has stored every record sent to it
# before the call: a marker sent after them over the same native socket
# (journald reads it in order) is readable. Bounded as journal_field (20 s):
# a count of records taken before journald caught up would find "no record"
# for a start whose record is still queued.
journal_caught_up() {
  local m
  m=$(new_id marker)
  printf 'MESSAGE=portcullis integration: journal marker %s\nSYSLOG_IDENTIFIER=portcullis-it\nPORTCULLIS_IT_MARKER=%s\n' \
    "$m" "$m" | logger --journald || return 1
  for _ in $(seq 1 200); do
    [[ -n $(journalctl -o cat --no-pager -q "PORTCULLIS_IT_MARKER=$m" 2>/dev/null | head -n 1) ]] && return 0
    sleep 0.1
  done
  return 1
}

# $SRANDOM (getrandom(2)), not $RANDOM: callers take the ID from a command
# substitution, where bash reseeds $RANDOM from the time and the PID; 20,000
# IDs made that way held 192 repeats, and one repeat fails a start. A suite
# sets PC_ID_PREFIX to tell its containers apart (default it).
new_id() { printf '%s-%s-%s' "${PC_ID_PREFIX:-it}" "$1" "$SRANDOM"; }

# start_case NAME IMAGE EXPECT VERDICT [PATTERN]
#   EXPECT: run (exit 0) or refuse (non-zero, stderr has the denial line)
#   VERDICT: the PORTCULLIS_VERDICT the journal must hold for this container
#   PATTERN: a fixed string the denial reason must contain
start_case() {
  local name=$1 image=$2 expect=$3 verdict=$4 pattern=${5:-} id out rc jv problems=()
  id=$(new_id "$name")
  set +e
  # START_OPTS: extra `ctr run` options the caller sets (e.g. --platform linux/arm64).
  out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm \
    ${START_OPTS[@]+"${START_OPTS[@]}"} --runtime "$RUNTIME" "$R/$image" "$id" /bin/true 2>&1)
  rc=$?
  set -e
  case $expect in
  run) [[ $rc -eq 0 ]] || problems+=("expected the container to run, ctr exited $rc: $out") ;;
  refuse)
    [[ $rc -ne 0 ]] || problems+=("expected a refusal, the container ran")
    grep -qF "portcullis: denied " <<<"$out" || problems+=("no denial line in: $out")
    if [[ -n $pattern ]] && ! grep -qF -- "$pattern" <<<"$out"; then
      problems+=("reason lacks '$pattern': $out")
    fi
    ;;
  esac
  jv=$(journal_field "$id" PORTCULLIS_VERDICT) || jv="(no record)"
  [[ $jv == "$verdict" ]] || problems+=("journal verdict for $id is $jv, expected $verdict")
  if ((${#problems[@]})); then
    not_ok "$name" "${problems[@]}"
  else
    ok "$name${pattern:+ ($pattern)}"
  fi
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
  # For the caller's follow-up checks.
  # shellcheck disable=SC2034
  LAST_ID=$id
  # shellcheck disable=SC2034
  LAST_OUT=$out
}

write_policy() { cat >"$PORTCULLIS_POLICY"; }

# summary: the closing TAP lines; returns non-zero when a check failed.
summary() {
  echo
  echo "# ${#FAILED[@]} failure(s)${FAILED[*]:+: ${FAILED[*]}}"
  echo "$PASS passed, $FAIL failed"
  [[ $FAIL -eq 0 ]]
}
