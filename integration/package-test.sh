#!/usr/bin/env bash
# The Debian package, end to end on this machine (root, Debian 12):
# build it (packaging/build-deb), `dpkg -i` it, check its files, permissions,
# man pages, completions and journal catalog, `systemd-analyze verify` the
# units, run `portcullis doctor --json` against a private containerd
# (env.sh), run `portcullis sync` against that containerd and see a pulled
# signed image's signatures cached with no `fetch` by hand (and the image
# start through the installed shim), see a failing image recorded in the
# journal, then `apt-get remove` and `apt-get purge` and check that only what
# the operator wrote remains. Cleans up whatever it started and purges the
# package, pass or fail.
#
#   bash integration/package-test.sh
#
# Its private containerd runs with the CRI plugin and the INSTALLED drop-in
# (/etc/containerd/conf.d/portcullis-runtime.toml) in its `imports`. A
# bundle of the synced signatures is exported and imported into an empty
# state directory (edge nodes).
#
# Needs setup.sh's packages (containerd, docker-registry, skopeo, umoci,
# jq, systemd) and cargo-deb (setup.sh installs the pinned version). Refuses
# to run where portcullis is installed already or /var/lib/portcullis or
# /etc/portcullis exist (they would be purged), unless they are the leftovers
# of an earlier run of this test that was killed before its clean-up (the
# marker file $MARKER says so): those are purged first.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$HERE")
export PC_WORK=${PC_WORK:-/tmp/pc-pkg-test}
export PC_REGISTRY=${PC_REGISTRY:-127.0.0.1:5088}
export PC_NS=${PC_NS:-portcullis-pkg}
# The installed package's files, not a test tree: the shim on containerd's
# PATH is /usr/bin's, the policy and state are the package's defaults.
export PC_BIN_DIR=/usr/bin
export PORTCULLIS_POLICY=/etc/portcullis/policy.toml
export PORTCULLIS_STATE_DIR=/var/lib/portcullis
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"

PASS=0
FAIL=0
SYNC_PID=
SIGN=$ROOT/target/debug/portcullis-testsign
R=$PC_REGISTRY
KEYS=$PC_WORK/keys
SYNC_FAILED_ID=$PC_MID_FETCH_FAILED
# Written before `dpkg -i`, removed after the purge: an installation with
# this marker is this test's own, left by a run killed before its clean-up.
MARKER=/var/tmp/portcullis-package-test.installed
DROP_IN=/etc/containerd/conf.d/portcullis-runtime.toml

finish() {
  echo "$PASS passed, $FAIL failed"
  ((FAIL == 0))
}

cleanup() {
  local rc=$?
  pc_exit_report "$rc"
  if [[ -n $SYNC_PID ]] && kill -0 "$SYNC_PID" 2>/dev/null; then
    kill "$SYNC_PID" 2>/dev/null
    wait "$SYNC_PID" 2>/dev/null
  fi
  pc_stop_all >/dev/null 2>&1 || true
  if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null | grep -qv '^not-installed$'; then
    apt-get purge -y -q portcullis >/dev/null 2>&1 || dpkg --purge portcullis >/dev/null 2>&1 || true
  fi
  # What this test wrote as "the operator".
  rm -rf /etc/portcullis/keys
  rmdir /etc/portcullis 2>/dev/null || true
  if ! dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null | grep -qv '^not-installed$'; then
    rm -f "$MARKER"
  fi
  exit "$rc"
}

# ------------------------------------------------------------ preconditions
if ((EUID != 0)); then
  echo "package-test: run as root (dpkg -i)" >&2
  exit 2
fi
if [[ -f $MARKER ]]; then
  echo "# leftovers of an earlier, interrupted run of this test ($MARKER): purging them"
  apt-get purge -y -q portcullis >/dev/null 2>&1 || dpkg --purge portcullis >/dev/null 2>&1 || true
  rm -rf /etc/portcullis/keys
  rmdir /etc/portcullis 2>/dev/null || true
  rm -rf /var/lib/portcullis
  rm -f "$MARKER"
fi
if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null | grep -q '^installed$'; then
  echo "package-test: portcullis is installed on this machine; this test would purge it. Purge it first." >&2
  exit 2
fi
for d in /var/lib/portcullis /etc/portcullis; do
  if [[ -e $d ]]; then
    echo "package-test: $d exists; this test would delete it. Move it away first." >&2
    exit 2
  fi
done
trap cleanup EXIT

# ------------------------------------------------------------------ build
echo "# building the package (packaging/build-deb)"
(cd "$ROOT" && cargo build --quiet -p portcullis-testsign) || exit 1
DEB=$(cd "$ROOT" && packaging/build-deb 2>"$PC_WORK.build.log" | tail -n 1)
[[ $DEB != /* ]] && DEB=$ROOT/$DEB
if [[ -f $DEB && $DEB == "$ROOT"/target/debian/*.deb ]]; then
  ok "packaging/build-deb wrote $(basename "$DEB") to target/debian/"
else
  not_ok "packaging/build-deb wrote a .deb to target/debian/" "got '$DEB'" "$(tail -n 20 "$PC_WORK.build.log")"
  finish
  exit 1
fi
rm -f "$PC_WORK.build.log"

CONTENTS=$(dpkg-deb -c "$DEB")
missing=()
for f in ./usr/bin/portcullis ./usr/bin/containerd-shim-portcullis-v2 ./usr/bin/portcullis-runc \
  ./usr/lib/systemd/system/containerd.service.d/portcullis-node-wide.conf \
  ./etc/portcullis/policy.toml ./etc/containerd/conf.d/portcullis-runtime.toml \
  ./usr/lib/systemd/system/portcullis-sync.service \
  ./usr/lib/systemd/system/portcullis-trust-refresh.service \
  ./usr/lib/systemd/system/portcullis-trust-refresh.timer \
  ./usr/lib/systemd/system/portcullis-heartbeat.service \
  ./usr/lib/systemd/system/portcullis-heartbeat.timer \
  ./usr/lib/systemd/system/portcullis-reverify.service ./usr/lib/systemd/system/portcullis-reverify.timer \
  ./usr/lib/systemd/system/portcullis-reverify.path ./usr/share/man/man1/portcullis-reverify.1.gz \
  ./usr/lib/systemd/system/portcullis-policy-pull.service ./usr/lib/systemd/system/portcullis-policy-pull.timer \
  ./usr/share/man/man1/portcullis-policy-pull.1.gz ./usr/share/man/man1/portcullis-policy-publish.1.gz \
  ./usr/share/doc/portcullis/AUDIT.md ./usr/share/doc/portcullis/evidence.schema.json \
  ./usr/share/doc/portcullis/BUILT-USING \
  ./usr/lib/systemd/catalog/portcullis.catalog \
  ./usr/share/doc/portcullis/copyright ./usr/share/doc/portcullis/changelog.Debian.gz \
  ./usr/share/bash-completion/completions/portcullis \
  ./usr/share/zsh/vendor-completions/_portcullis \
  ./usr/share/fish/vendor_completions.d/portcullis.fish \
  ./usr/share/man/man1/portcullis.1.gz ./usr/share/man/man1/portcullis-sync.1.gz \
  ./usr/share/man/man1/portcullis-doctor.1.gz ./usr/share/man/man1/portcullis-trust-update.1.gz \
  ./usr/share/man/man1/portcullis-heartbeat.1.gz ./usr/share/man/man1/portcullis-evidence.1.gz \
  ./usr/share/man/man1/portcullis-evidence-verify.1.gz ./usr/share/man/man1/portcullis-bundle-export.1.gz; do
  grep -qE " $f\$" <<<"$CONTENTS" || missing+=("$f")
done
if ((${#missing[@]} == 0)); then ok "the package holds binaries, policy, drop-in, units, catalog, docs, completions"; else not_ok "package contents" "missing: ${missing[*]}"; fi
# The C library the static start-path binaries carry, recorded for the
# operator (a fix to it reaches them only through a rebuilt package): the
# Rust toolchain's musl, and Debian's musl-dev headers for aws-lc's C code.
built_using=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/share/doc/portcullis/BUILT-USING 2>/dev/null)
musl_dev=$(dpkg-query -W -f='${Version}' musl-dev)
if [[ $(head -n1 <<<"$built_using") =~ ^musl\ [0-9]+\.[0-9]+\.[0-9]+\ \(the\ self-contained\ libc\.a\ of\ rustc\ [0-9.]+,\ target\ $("$PC_REPO_ROOT/packaging/build-gates" --print-target)\)$ ]] &&
  [[ $(sed -n 2p <<<"$built_using") == "musl-dev (= $musl_dev) "* ]]; then
  ok "BUILT-USING records the musl linked into the start-path binaries: $(head -n1 <<<"$built_using")"
else
  not_ok "BUILT-USING names the musl of the build" "got '$built_using'"
fi

# One man page per command and subcommand, generated from the CLI definition.
mandir=$(mktemp -d)
"$ROOT/target/release/portcullis" man --out-dir "$mandir" 2>/dev/null
want=$(find "$mandir" -name '*.1' | wc -l)
rm -rf "$mandir"
got=$(grep -c ' ./usr/share/man/man1/portcullis.*\.1\.gz$' <<<"$CONTENTS")
if ((want > 10 && got == want)); then ok "man pages for every subcommand ($got)"; else not_ok "man pages for every subcommand" "package has $got, CLI defines $want"; fi

# ---------------------------------------------------------------- install
echo "$DEB" >"$MARKER"
if out=$(dpkg -i "$DEB" 2>&1); then ok "dpkg -i"; else
  not_ok "dpkg -i" "$out"
  finish
  exit 1
fi

perm=$(stat -c '%a %U %G' /var/lib/portcullis 2>&1)
if [[ $perm == "700 root root" ]]; then ok "state directory /var/lib/portcullis is 0700 root:root"; else not_ok "state directory permissions" "$perm"; fi
perm=$(stat -c '%a %U' /usr/bin/portcullis /usr/bin/containerd-shim-portcullis-v2 | sort -u)
if [[ $perm == "755 root" ]]; then ok "binaries in /usr/bin, 0755 root"; else not_ok "binary permissions" "$perm"; fi
conffiles=$(dpkg-query -W -f='${Conffiles}' portcullis)
if grep -q ' /etc/portcullis/policy.toml ' <<<"$conffiles" && grep -q ' /etc/containerd/conf.d/portcullis-runtime.toml ' <<<"$conffiles"; then
  ok "policy and containerd drop-in are conffiles"
else
  not_ok "conffiles" "$conffiles"
fi
check "shipped policy is valid" /usr/bin/portcullis policy check /etc/portcullis/policy.toml
if grep -qE '^mode = "audit"' /etc/portcullis/policy.toml; then ok "shipped policy starts in audit mode"; else not_ok "shipped policy starts in audit mode"; fi
check "man portcullis-sync resolves" man -w portcullis-sync
check "bash completion script parses" bash -n /usr/share/bash-completion/completions/portcullis
# (the whole listing first: grep -q closing the pipe early fails pipefail)
catalog=$(journalctl --list-catalog 2>/dev/null)
if grep -q "$SYNC_FAILED_ID" <<<"$catalog"; then
  ok "journal catalog updated (postinst ran journalctl --update-catalog)"
else
  not_ok "journal catalog updated" "$SYNC_FAILED_ID not in journalctl --list-catalog"
fi
if grep -q portcullis /etc/containerd/config.toml 2>/dev/null; then
  not_ok "installation left /etc/containerd/config.toml alone" "it mentions portcullis"
else
  ok "installation left /etc/containerd/config.toml alone"
fi

# ---------------------------------------------------------------- systemd
if out=$(cd "$ROOT" && systemd-analyze verify systemd/*.service systemd/*.timer systemd/*.path 2>&1) && [[ -z $out ]]; then
  ok "systemd-analyze verify systemd/*.service systemd/*.timer: clean"
else
  not_ok "systemd-analyze verify" "$out"
fi
if out=$(systemd-analyze verify /usr/lib/systemd/system/portcullis-sync.service /usr/lib/systemd/system/portcullis-trust-refresh.timer /usr/lib/systemd/system/portcullis-heartbeat.timer /usr/lib/systemd/system/portcullis-reverify.timer /usr/lib/systemd/system/portcullis-reverify.path 2>&1) && [[ -z $out ]]; then
  ok "systemd-analyze verify on the installed units: clean"
else
  not_ok "systemd-analyze verify (installed)" "$out"
fi
if [[ -L /etc/systemd/system/multi-user.target.wants/portcullis-sync.service && -L /etc/systemd/system/timers.target.wants/portcullis-trust-refresh.timer &&
  -L /etc/systemd/system/timers.target.wants/portcullis-heartbeat.timer && -L /etc/systemd/system/timers.target.wants/portcullis-reverify.timer &&
  -L /etc/systemd/system/paths.target.wants/portcullis-reverify.path ]]; then
  ok "portcullis-sync.service, portcullis-trust-refresh.timer, portcullis-heartbeat.timer, portcullis-reverify.timer and .path enabled"
else
  not_ok "units enabled" "$(find /etc/systemd/system -name '*portcullis*' 2>&1)"
fi

# ------------------------------------------------------ private containerd
# The operator's one-line edit (imports = [the installed drop-in]) in the
# private containerd's config, with the CRI plugin loaded as on a node.
export PC_CONTAINERD_IMPORTS=$DROP_IN PC_CONTAINERD_CRI=1
pc_start_registry || exit 1
pc_start_containerd || exit 1
mkdir -p "$KEYS"
HOSTCFG=$PC_WORK/containerd/config.toml
if grep -qxF "imports = [\"$DROP_IN\"]" "$HOSTCFG" &&
  pc_ctr plugins ls 2>/dev/null | grep -E '^io\.containerd\.grpc\.v1 +cri ' | grep -qw ok; then
  ok "containerd runs with the installed drop-in imported and its CRI plugin loaded"
else
  not_ok "containerd with the installed drop-in" "$(head -n 3 "$HOSTCFG")" "$(pc_ctr plugins ls 2>&1 | grep cri)" "$(grep -i 'cri' "$PC_WORK/logs/containerd.log" | tail -n 3)"
fi
dump=$(containerd --config "$HOSTCFG" config dump 2>&1)
# runtime_type of the handler's own table (up to the next table header).
handler=$(awk '/^ *\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.portcullis\]/ {f = 1; next} /^ *\[/ {f = 0} f' <<<"$dump")
if grep -qE '^ *runtime_type = "io\.containerd\.portcullis\.v2"' <<<"$handler" &&
  grep -qF '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]' <<<"$dump"; then
  ok "containerd config dump: CRI runtime handler portcullis (io.containerd.portcullis.v2) next to runc"
else
  not_ok "containerd config dump shows the handler" "$(grep -n 'runtimes' <<<"$dump")"
fi

doctor() { /usr/bin/portcullis doctor --json --address "$PC_CONTAINERD_SOCK" "$@"; }
status_of() { jq -r --arg n "$1" '.checks[] | select(.name == $n) | .status' <<<"$2"; }

out=$(doctor --containerd-config "$HOSTCFG")
rc=$?
problems=()
for pair in containerd=ok cri-runtime=ok shim=ok policy=ok trust-root=warn journald=ok state-dir=ok sync-service=unknown; do
  s=$(status_of "${pair%%=*}" "$out")
  [[ $s == "${pair#*=}" ]] || problems+=("${pair%%=*}: $s, expected ${pair#*=}")
done
((rc == 0)) || problems+=("exit $rc")
[[ $(jq -r .ok <<<"$out") == true ]] || problems+=("ok is not true")
[[ $(jq -r '.checks[] | select(.name == "cri-runtime") | .detail' <<<"$out") == *"(RuntimeClass handler)"* ]] || problems+=("cri-runtime does not see the loaded CRI plugin")
if ((${#problems[@]} == 0)); then ok "doctor --json: all checks pass (trust root: warn, sync service: unknown without systemd)"; else not_ok "doctor --json" "${problems[@]}" "$out"; fi
jq -r '.checks[] | "#   \(.status)\t\(.name)\t\(.detail)"' <<<"$out" 2>/dev/null

out=$(doctor --containerd-config /etc/containerd/config.toml --policy "$PC_WORK/none.toml" --state-dir "$PC_WORK/nostate")
rc=$?
if ((rc == 1)) && [[ $(status_of policy "$out") == fail && $(status_of state-dir "$out") == fail && $(status_of cri-runtime "$out") != ok ]] &&
  jq -e '.checks[] | select(.name == "policy") | .fix | test("policy check")' <<<"$out" >/dev/null; then
  ok "doctor fails (exit 1) on a missing policy, state dir and runtime import, each with a fix"
else
  not_ok "doctor failing checks" "exit $rc" "$out"
fi
out=$(/usr/bin/portcullis doctor --address "$PC_WORK/no.sock" --containerd-config "$HOSTCFG" 2>&1)
rc=$?
if ((rc == 1)) && grep -qE '^fail +containerd ' <<<"$out" && grep -q 'fix: start containerd' <<<"$out"; then
  ok "doctor (text) reports an unreachable containerd with its fix"
else
  not_ok "doctor, containerd unreachable" "exit $rc" "$out"
fi

# ------------------------------------------------------------------- sync
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
DIGEST=$(pc_push_image sync/app:1 pkg-sync | tail -n 1)
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/sync/app:1" >/dev/null

/usr/bin/portcullis sync --address "$PC_CONTAINERD_SOCK" --plain-http --max-attempts 2 \
  >"$PC_WORK/logs/sync.log" 2>&1 &
SYNC_PID=$!
for _ in $(seq 1 100); do
  grep -q "subscribing to image events" "$PC_WORK/logs/sync.log" && break
  sleep 0.1
done
# containerd answers the subscription only with its first event; give the
# request a moment to arrive before pulling.
sleep 1
if grep -q "subscribing to image events" "$PC_WORK/logs/sync.log"; then ok "portcullis sync connected to containerd and subscribed to its image events"; else not_ok "sync subscribed" "$(cat "$PC_WORK/logs/sync.log")"; fi

ENTRY=/var/lib/portcullis/cache/sha256/${DIGEST#sha256:}.json
[[ -e $ENTRY ]] && not_ok "no cache entry before the pull" "$ENTRY exists"
pc_pull sync/app:1 >/dev/null 2>&1 || not_ok "pull $R/sync/app:1"
for _ in $(seq 1 300); do
  [[ -s $ENTRY ]] && break
  sleep 0.1
done
if [[ -s $ENTRY ]] && grep -q "sync/app:1.*signature(s) cached" "$PC_WORK/logs/sync.log"; then
  ok "pulling a signed image cached its signatures ($ENTRY) without a fetch by hand"
else
  not_ok "sync cached the pulled image's signatures" "$ENTRY missing" "$(cat "$PC_WORK/logs/sync.log")"
fi

# The operator's policy: enforce for this repository, with their key.
install -d -m 0755 /etc/portcullis/keys
install -m 0644 "$KEYS/release.pub" /etc/portcullis/keys/release.pub
cat >/etc/portcullis/policy.toml <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "sync"
images = ["$R/sync/*"]
[[rule.signer]]
key = "keys/release.pub"
EOF
id=pkg-$SRANDOM
if out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" run --rm \
  --runtime io.containerd.portcullis.v2 "$R/sync/app:1" "$id" /bin/true 2>&1); then
  ok "the installed shim starts the synced image in enforce mode"
else
  not_ok "start through the installed shim" "$out"
fi

# The installed runc gate (the node-wide drop-in's runc, a symlink to the
# statically linked /usr/bin/portcullis-runc), named per container with
# --runc-binary: the synced image runs, an unsigned one is refused at
# `runc create` with the image, its digest and the rule that wants a signature.
# Linked with musl: a static glibc carries its tunables' parser (the string
# GLIBC_TUNABLES), musl has none.
if [[ $(file -b /usr/bin/portcullis-runc) == *"statically linked"* && $(file -b /usr/bin/containerd-shim-portcullis-v2) == *"statically linked"* ]] &&
  ! grep -qa GLIBC_TUNABLES /usr/bin/portcullis-runc /usr/bin/containerd-shim-portcullis-v2; then
  ok "the installed start-path binaries are statically linked with musl (packaging/build-gates)"
else
  not_ok "statically linked start-path binaries" "$(file /usr/bin/portcullis-runc /usr/bin/containerd-shim-portcullis-v2)"
fi
# Linked by packaging/link-gates: lld, and the gates' functions first: a
# pass-through's (musl's `__libc_start_main` among them, in the first 64
# KiB: C library code the linker inputs do not list, linked last in the
# default order), then a warm start's. The list marks its parts
# (`# part: warm`); 95 % of the pass-through and warm functions it names
# that a gate has must lie in its first 1.5 MiB of code (measured when this
# was written: 0.86 MB in the runc gate, 1.16 MB in the shim wrapper, whose
# instances are larger; linked in the default order they spread over the
# whole 6.6 MB).
order_ok=1 order_why=
for b in /usr/bin/portcullis-runc /usr/bin/containerd-shim-portcullis-v2; do
  text=$(readelf -SW "$b" | sed -n 's/.*\] \.text *PROGBITS *\([0-9a-f]*\) .*/\1/p')
  lsm=$(nm "$b" | awk '$3 == "__libc_start_main" { print $1; exit }')
  warm=$(python3 - "$ROOT/packaging/start-path.order" "$b" "$ROOT/packaging/link-gates" "${text:-0}" <<'PY'
import importlib.machinery, importlib.util, subprocess, sys
loader = importlib.machinery.SourceFileLoader("link_gates", sys.argv[3])
link_gates = importlib.util.module_from_spec(importlib.util.spec_from_loader("link_gates", loader))
loader.exec_module(link_gates)
unsuffixed, text = link_gates.unsuffixed, int(sys.argv[4], 16)
part, early = None, []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("# part: "):
        part = line[len("# part: "):]
    elif line and not line.startswith("#") and part in ("pass-through", "warm"):
        early.append(unsuffixed(line))
at = {}
for sym in subprocess.run(["nm", "--defined-only", sys.argv[2]],
                          capture_output=True, text=True, check=True).stdout.splitlines():
    t = sym.split()
    if len(t) == 3:
        at.setdefault(unsuffixed(t[2]), int(t[0], 16) - text)
offsets = sorted(at[n] for n in early if n in at)
print(f"{len(offsets)} {offsets[int(len(offsets) * 0.95)] if offsets else -1}")
PY
  ) || warm="0 -1"
  read -r warm_n warm_p95 <<<"$warm"
  if ! readelf -p .comment "$b" | grep -q 'Linker: LLD' || [[ -z $text || -z $lsm ]] ||
    ((warm_n < 100 || warm_p95 < 0 || warm_p95 > 1572864)) || (((16#$lsm) - (16#$text) > 65536)); then
    order_ok=0 order_why+="$b: .text at ${text:-?}, __libc_start_main at ${lsm:-?}, $warm_n pass-through and warm functions with 95 % of them within ${warm_p95} bytes of .text, $(readelf -p .comment "$b" | grep -o 'Linker: [^ ]*' || echo 'no linker named'); "
  else
    order_why+="$(basename "$b"): 95 % of its $warm_n pass-through and warm functions in the first $((warm_p95 / 1024)) KiB; "
  fi
done
if ((order_ok)); then
  ok "the start-path binaries are linked with a pass-through's, then a warm start's functions placed first (packaging/link-gates, lld: ${order_why%; })"
else
  not_ok "function order of the start-path binaries" "$order_why"
fi
# The order list names functions with their hashes, which a dependency or
# toolchain change moves all at once. link-gates then matches them without
# their hashes and places every instance of each generic first (8,800
# symbols instead of 2,100 when this was found), so a stale list silently
# spreads the start path again. Most of its Rust names that carry hashes
# must be this build's, hashes included (ThinLTO's `.llvm.<n>` suffix
# aside, which moves with the directory the crate is built in: link-gates'
# own `unsuffixed`). The verification's names, profiled in another build,
# are written without hashes and match by name alone.
exact=$(python3 - "$ROOT/packaging/start-path.order" /usr/bin/portcullis-runc "$ROOT/packaging/link-gates" <<'PY'
import importlib.machinery, importlib.util, subprocess, sys
loader = importlib.machinery.SourceFileLoader("link_gates", sys.argv[3])
link_gates = importlib.util.module_from_spec(importlib.util.spec_from_loader("link_gates", loader))
loader.exec_module(link_gates)
unsuffixed = link_gates.unsuffixed
names = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
rust = [unsuffixed(n) for n in names
        if n.startswith(("_ZN", "_R")) and link_gates.stable(n) != unsuffixed(n)]
syms = set(unsuffixed(s) for s in subprocess.run(
    ["nm", "--defined-only", "--format=just-symbols", sys.argv[2]],
    capture_output=True, text=True, check=True).stdout.split())
print(f"{sum(n in syms for n in rust)} {len(rust)}")
PY
) || exact="0 0"
read -r exact_n rust_n <<<"$exact"
if ((rust_n > 0 && exact_n * 100 >= rust_n * 60)); then
  ok "the function order list was written for this build ($exact_n of its $rust_n hashed Rust names are the runc gate's symbols, hashes included)"
else
  not_ok "function order list for this build" "only ${exact_n:-0} of ${rust_n:-0} hashed Rust names in packaging/start-path.order are the runc gate's symbols, hashes included: it was written for another build (dependency or toolchain change); regenerate it with \`bash integration/bench.sh 3\` and copy target/bench/start-path.order over packaging/start-path.order"
fi
GATE=/usr/lib/portcullis/runtime-bin/runc
id=pkg-$SRANDOM
if out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" run --rm \
  --runc-binary "$GATE" "$R/sync/app:1" "$id" /bin/true 2>&1); then
  ok "the installed runc gate ($GATE) starts the synced image in enforce mode"
else
  not_ok "start through the installed runc gate" "$out"
fi
UNSIGNED=$(pc_push_image sync/unsigned:1 pkg-unsigned | tail -n 1)
pc_pull sync/unsigned:1 >/dev/null 2>&1 || not_ok "pull $R/sync/unsigned:1"
id=pkg-$SRANDOM
out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" run --rm \
  --runc-binary "$GATE" "$R/sync/unsigned:1" "$id" /bin/true 2>&1)
rc=$?
if ((rc != 0)) && grep -qF "portcullis: denied $R/sync/unsigned:1@$UNSIGNED:" <<<"$out" && grep -qF 'rule "sync"' <<<"$out"; then
  ok "the installed runc gate refuses the unsigned image: $(grep -o 'portcullis: denied [^:]*:[^:]*:[^:]*' <<<"$out" | head -n 1)"
else
  not_ok "unsigned image refused by the installed runc gate" "exit $rc" "$out"
fi

# Edge nodes: export the synced signatures, import them into an empty state
# directory (the README's commands).
EDGE=$PC_WORK/edge-state
if out=$(/usr/bin/portcullis bundle export --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" \
  -o "$PC_WORK/edge.bundle" "$R/sync/app:1" 2>&1) &&
  out=$(/usr/bin/portcullis bundle import --state-dir "$EDGE" --json "$PC_WORK/edge.bundle" 2>&1) &&
  [[ $(jq .stored <<<"$out") == 1 && -s $EDGE/cache/sha256/${DIGEST#sha256:}.json ]]; then
  ok "bundle export of the synced image, bundle import into an empty state directory"
else
  not_ok "bundle export/import" "$out"
fi

# An image whose registry is unreachable: bounded retries, then one record.
bad=127.0.0.1:9/nowhere/app:1
# This run's record only: the reference is fixed, an earlier run's record
# for it must not stand in.
bad_since=@$(date +%s.%6N)
pc_ctr images tag "$R/sync/app:1" "$bad" >/dev/null 2>&1 || not_ok "ctr images tag $bad"
rec=
for _ in $(seq 1 150); do
  rec=$(journalctl -o json --no-pager -q --since "$bad_since" SYSLOG_IDENTIFIER=portcullis-sync "MESSAGE_ID=$SYNC_FAILED_ID" "PORTCULLIS_IMAGE_REF=$bad" 2>/dev/null | tail -n 1)
  [[ -n $rec ]] && break
  sleep 0.2
done
if [[ -n $rec ]] && [[ $(jq -r .PORTCULLIS_ATTEMPTS <<<"$rec") == 2 ]] && grep -q "attempt 1/2 failed" "$PC_WORK/logs/sync.log"; then
  ok "an unreachable registry: 2 attempts with backoff, then a journal record (MESSAGE_ID $SYNC_FAILED_ID)"
else
  not_ok "sync failure journaled" "record: $rec" "$(tail -n 5 "$PC_WORK/logs/sync.log")"
fi

kill "$SYNC_PID" 2>/dev/null
wait "$SYNC_PID" 2>/dev/null
SYNC_PID=
pc_stop_all >/dev/null 2>&1 || not_ok "stopping containerd and the registry"

# ------------------------------------------------------------ remove/purge
if out=$(apt-get remove -y -q portcullis 2>&1); then ok "apt-get remove"; else not_ok "apt-get remove" "$out"; fi
left=()
for f in /usr/bin/portcullis /usr/bin/containerd-shim-portcullis-v2 /usr/lib/systemd/system/portcullis-sync.service /usr/lib/systemd/system/portcullis-heartbeat.timer /usr/lib/systemd/catalog/portcullis.catalog; do
  [[ -e $f ]] && left+=("$f")
done
[[ -e /etc/portcullis/policy.toml ]] || left+=("(policy.toml should stay until purge)")
[[ -d /var/lib/portcullis ]] || left+=("(state dir should stay until purge)")
if ((${#left[@]} == 0)); then ok "remove: program files gone, configuration and state kept"; else not_ok "remove" "${left[@]}"; fi

if out=$(apt-get purge -y -q portcullis 2>&1); then ok "apt-get purge"; else not_ok "apt-get purge" "$out"; fi
left=()
for f in /etc/portcullis/policy.toml /etc/containerd/conf.d/portcullis-runtime.toml /var/lib/portcullis /usr/share/doc/portcullis /usr/share/portcullis; do
  [[ -e $f ]] && left+=("$f")
done
while IFS= read -r f; do left+=("$f"); done < <(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name '*portcullis*' 2>/dev/null)
if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null | grep -qv '^not-installed$'; then left+=("dpkg still knows the package"); fi
if ((${#left[@]} == 0)); then ok "purge: no package file, conffile, state or unit state left"; else not_ok "purge leaves nothing of the package" "${left[@]}"; fi
remaining=$(find /etc/portcullis -type f 2>/dev/null | sort | tr '\n' ' ')
if [[ $remaining == "/etc/portcullis/keys/release.pub " ]]; then
  ok "purge kept only what the operator wrote (/etc/portcullis/keys/release.pub)"
else
  not_ok "purge kept the operator's files only" "found: $remaining"
fi
catalog=$(journalctl --list-catalog 2>/dev/null)
if grep -q "$SYNC_FAILED_ID" <<<"$catalog"; then
  not_ok "journal catalog entries gone after purge"
else
  ok "journal catalog entries gone after purge"
fi

finish
