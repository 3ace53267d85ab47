#!/usr/bin/env bash
# `portcullis trust update/import/show` against a local TUF repository made
# with python-tuf (make_repo.py) and served on loopback only: first update,
# a newer target picked up, then rollback and freeze attacks (an older
# timestamp, a new timestamp pinning an older snapshot, an expired timestamp)
# and a wrong pinned root, each refused with the cached root left as it was;
# then offline import. Prints `ok N - …` / `not ok N - …` and `N passed, N
# failed`; exits non-zero on any failure. Needs python3 (install.sh installs
# the pinned packages from PyPI) and builds target/debug/portcullis unless
# PORTCULLIS_BIN names a binary.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)
python=${PYTHON:-python3}
shared=$top/tests/data/trust-roots

"$here/install.sh" || { echo "not ok 1 - install python-tuf"; echo "0 passed, 1 failed"; exit 1; }
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  (cd "$top" && cargo build -q --bin portcullis) || { echo "not ok 1 - cargo build"; echo "0 passed, 1 failed"; exit 1; }
fi
bin=${PORTCULLIS_BIN:-$top/target/debug/portcullis}

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-tuf.XXXXXX")
export PORTCULLIS_STATE_DIR=$work/state
repo=$work/repo
server=
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

n=0 passed=0 failed=0
# t DESCRIPTION COMMAND...: one numbered check.
t() {
  local desc=$1
  shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $desc"
    passed=$((passed + 1))
  else
    echo "not ok $n - $desc"
    sed 's/^/# /' "$work/err" 2>/dev/null | head -5
    failed=$((failed + 1))
  fi
}

mk() { "$python" "$here/make_repo.py" "$@" >"$work/err" 2>&1; }
# run EXPECTED_RC ARGS...: portcullis with stdout in $work/out, stderr in $work/err.
run() {
  local want=$1 rc
  shift
  "$bin" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  [ "$rc" -eq "$want" ] || { echo "exit $rc, expected $want" >>"$work/err"; return 1; }
}
# js EXPR: evaluate a Python expression over the JSON in $work/out (as d).
js() { "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$work/out" "$1" 2>>"$work/err"; }
err_has() { grep -qi -- "$1" "$work/err"; }
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

corp=$PORTCULLIS_STATE_DIR/trust/corp/trusted_root.json
update_corp() { run "$1" trust update --name corp --mirror "$url" --root "$repo/root.json" "${@:2}"; }
unchanged_since() { [ -n "$1" ] && [ "$(sha "$corp")" = "$1" ]; }

# Targets: v1 is the production root without its newest Rekor log; v2 the full one.
"$python" - "$shared/production/trusted_root.json" "$work/v1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["tlogs"] = d["tlogs"][:1]
open(sys.argv[2], "w").write(json.dumps(d, indent=2) + "\n")
PY
cp "$shared/production/trusted_root.json" "$work/v2.json"

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
start_server() {
  mk init "$repo" --target "$work/v1.json" || return 1
  "$python" -m http.server --bind 127.0.0.1 "$port" --directory "$repo/www" >"$work/http.log" 2>&1 &
  server=$!
  for _ in $(seq 50); do
    "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/timestamp.json", timeout=1)' "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
t "python-tuf repository (version 1) served on $url" start_server

t "trust update --mirror --root succeeds" update_corp 0
t "the root is written to trust/corp/trusted_root.json, byte for byte the published target" \
  cmp -s "$corp" "$work/v1.json"
t "trust show --json lists 2 CAs, 1 transparency log, 2 CT logs, 1 TSA" eval \
  'run 0 trust show --name corp --json && js "len(d[\"certificate_authorities\"])==2 and len(d[\"tlogs\"])==1 and len(d[\"ctlogs\"])==2 and len(d[\"timestamp_authorities\"])==1 and d[\"tlogs\"][0][\"base_url\"]==\"https://rekor.sigstore.dev\" and len(d[\"tlogs\"][0][\"log_id\"])==64"'
tuf_cached() {
  local f
  for f in root.json timestamp.json snapshot.json targets.json; do
    [ -f "$PORTCULLIS_STATE_DIR/trust/tuf/corp/$f" ] || { echo "no $f" >"$work/err"; return 1; }
  done
}
t "TUF metadata is kept in trust/tuf/corp/ (the rollback floor)" tuf_cached

t "a newer target is published (targets, snapshot, timestamp version 2)" mk publish "$repo" --target "$work/v2.json"
t "trust update picks it up (changed)" eval 'update_corp 0 --json && js "d[\"changed\"] and d[\"counts\"][\"tlogs\"]==2"'
t "trust show lists the new log" eval \
  'run 0 trust show --name corp --json && js "[l[\"base_url\"] for l in d[\"tlogs\"]]==[\"https://rekor.sigstore.dev\",\"https://log2025-1.rekor.sigstore.dev\"]"'
good=$(sha "$corp")

t "rollback: the mirror serves timestamp version 1 again" mk serve-timestamp "$repo" 1
t "trust update refuses it (exit 3, 'rollback detected for timestamp')" eval 'update_corp 3 && err_has "rollback detected for timestamp"'
t "the cached root is unchanged after the timestamp rollback" unchanged_since "$good"

t "rollback: a new timestamp (version 3) pins snapshot version 1" mk timestamp "$repo" --snapshot-version 1
t "trust update refuses it (exit 3, snapshot rollback)" eval 'update_corp 3 && err_has "rollback detected for snapshot"'
t "the cached root is unchanged after the snapshot rollback" unchanged_since "$good"

t "freeze: a new timestamp (version 4) that expired an hour ago" mk timestamp "$repo" --expired
t "trust update refuses it (exit 3, 'timestamp metadata expired')" eval 'update_corp 3 && err_has "timestamp metadata expired"'
t "the cached root is unchanged after the expired timestamp" unchanged_since "$good"

t "a second repository's root.json, pinned by mistake" mk init "$work/other" --target "$work/v1.json"
t "trust update with the wrong pinned root is refused (signature threshold)" eval \
  'run 3 trust update --name corp --mirror "$url" --root "$work/other/root.json" && err_has "threshold not met"'
t "the cached root is unchanged after the wrong pinned root" unchanged_since "$good"

t "the mirror recovers: a new valid timestamp (version 5)" mk timestamp "$repo"
t "trust update accepts it; the root is unchanged (changed: false)" eval 'update_corp 0 --json && js "not d[\"changed\"]"'

t "trust update without --name writes the default root trust/trusted_root.json" eval \
  'run 0 trust update --mirror "$url" --root "$repo/root.json" && cmp -s "$PORTCULLIS_STATE_DIR/trust/trusted_root.json" "$work/v2.json" && [ -d "$PORTCULLIS_STATE_DIR/trust/tuf/default" ]'
t "trust show (default root) prints its logs" eval 'run 0 trust show && grep -q "log2025-1.rekor.sigstore.dev" "$work/out"'

printf '\x00garbage{' >"$work/garbage.json"
t "trust import of a garbage file is refused (exit 1, 'refusing')" eval \
  'run 1 trust import --name corp "$work/garbage.json" && err_has "refusing trust root"'
t "the cached root is unchanged after the refused import" unchanged_since "$good"
t "trust import --name staging of the staging root succeeds" run 0 trust import --name staging "$shared/staging/trusted_root.json" --json
t "trust show --name staging --json lists 5 transparency logs and 2 TSAs" eval \
  'run 0 trust show --name staging --json && js "len(d[\"tlogs\"])==5 and len(d[\"timestamp_authorities\"])==2 and d[\"age_seconds\"] < 600"'

t "plain http to a mirror off loopback is refused before any request" eval \
  'run 3 trust update --name corp --mirror http://192.0.2.1/ --root "$repo/root.json" && err_has "loopback"'
t "public-good only takes the public-good repository" eval 'run 3 trust update --name public-good --staging && err_has "only updated from"'
t "an invalid root name is a usage error (exit 2)" run 2 trust show --name Not_Valid

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
