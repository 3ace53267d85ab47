#!/usr/bin/env bash
# CRI, driven as a kubelet would with crictl (cri-tools v1.37.0, from
# integration/tools.sh), on containerd 1.6 (Debian's, config version 2) and
# v2.4.2 (config version 3): host-network pod sandbox, init container run to
# completion before the app, app container, a second container added to the
# running pod; signed allowed, unsigned refused. Two ways to the gate:
#
#   handler:  the opt-in RuntimeClass handler `portcullis` (crictl runp
#             --runtime portcullis), registered by the PACKAGED drop-in
#             (packaging/containerd/portcullis-runtime*.toml) imported into
#             the private containerd's config;
#   node:     node-wide enforcement, the default runc handler with a directory
#             holding runc -> portcullis-runc first on containerd's PATH.
#
# Every refusal is checked in the text crictl shows (`portcullis: denied
# <ref>@sha256:...`) and in the journal record of that container ID. On 2.x
# the opt-in handler only sees the pause container (threat model T62): the
# suite shows that gap as it is (the unsigned app starts, no record) rather
# than hiding it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
R=$PC_REGISTRY
KEYS=$PC_WORK/keys
PC_TOOLS=${PC_TOOLS:-/opt/portcullis-tools}
CRICTL=$PC_TOOLS/bin/crictl
PACKAGED=$PC_REPO_ROOT/packaging/containerd
VERSIONS=(${PC_CRI_VERSIONS:-1.6 2.4.2})
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR
BASE_PATH=$PATH

[[ -x $CRICTL ]] || {
  echo "cri: $CRICTL missing; run integration/tools.sh" >&2
  exit 1
}

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

trap 'pc_exit_trap $? crictl_cleanup' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR" "$PC_WORK/cri"

"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
declare -A DIGEST
for spec in cri/app:1 cri/unsigned:1 cri/init:1 cri/init-unsigned:1 cri/sidecar:1 cri/sidecar-unsigned:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done
# The sandbox (pause) image: the same busybox, sleeping until CRI kills it.
_pc_img_run umoci config --image "$(_pc_img_layout):base" --tag pause --no-history \
  --config.cmd /bin/busybox --config.cmd sleep --config.cmd 2147483647
DIGEST[cri/pause:1]=$(_pc_img_push pause cri/pause:1)
for spec in cri/pause:1 cri/app:1 cri/init:1 cri/sidecar:1; do
  "$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/$spec" >/dev/null
done
for spec in "${!DIGEST[@]}"; do "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true; done
write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "cri"
images = ["$R/cri/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF
export PC_CRI_SANDBOX_IMAGE=$R/cri/pause:1

cat >"$PC_WORK/cri/crictl.yaml" <<EOF
runtime-endpoint: unix://$PC_CONTAINERD_SOCK
image-endpoint: unix://$PC_CONTAINERD_SOCK
timeout: 60
EOF
crictl() { "$CRICTL" --config "$PC_WORK/cri/crictl.yaml" "$@"; }
crictl_cleanup() {
  [[ -S $PC_CONTAINERD_SOCK ]] || return 0
  crictl rmp -f -a >/dev/null 2>&1 || true
}

# The node-wide gate: runc -> portcullis-runc, first on containerd's PATH.
GATE_DIR=$PC_WORK/runc-gate
mkdir -p "$GATE_DIR"
ln -sf "$PC_BIN_DIR/portcullis-runc" "$GATE_DIR/runc"

# The packaged drop-in for containerd 1.6 (config version 2). 1.6 replaces
# config.toml's whole CRI section with an imported file's, so this machine's
# two CRI settings (no network: a local sandbox image; runc here may not
# lower oom_score_adj) are appended to a copy of the packaged file, which is
# kept byte for byte as its first part.
DROPIN_V2=$PC_WORK/cri/portcullis-runtime.toml
{
  cat "$PACKAGED/portcullis-runtime.toml"
  printf '\n# this test machine only\n[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n  sandbox_image = "%s"\n' "$PC_CRI_SANDBOX_IMAGE"
} >"$DROPIN_V2"
cmp -s -n "$(stat -c %s "$PACKAGED/portcullis-runtime.toml")" "$PACKAGED/portcullis-runtime.toml" "$DROPIN_V2" &&
  ok "the 1.6 test drop-in starts with the packaged portcullis-runtime.toml, byte for byte" ||
  not_ok "the 1.6 test drop-in holds the packaged file"

# use_containerd VERSION MODE: a fresh private containerd VERSION with CRI;
# MODE handler: the packaged drop-in imported; node: the runc gate on PATH.
use_containerd() {
  local v=$1 mode=$2 imports="" prefix=""
  crictl_cleanup
  _pc_ctr_cleanup
  pc_stop_containerd
  _pc_kill_shims
  _pc_umount_work
  rm -rf --one-file-system "$PC_WORK/containerd"
  if [[ $v == 1.* ]]; then
    PATH=$BASE_PATH
    [[ $mode == handler ]] && imports=$DROPIN_V2
  else
    PATH=$PC_TOOLS/containerd-v$v:$BASE_PATH
    [[ $mode == handler ]] && imports=$PACKAGED/portcullis-runtime-v3.toml
  fi
  [[ $mode == node ]] && prefix=$GATE_DIR
  PC_CONTAINERD_VERSION=$v PC_CONTAINERD_CRI=1 PC_CONTAINERD_IMPORTS=$imports \
    PC_CONTAINERD_PATH_PREPEND=$prefix pc_start_containerd
  local spec
  for spec in "${!DIGEST[@]}"; do
    ctr --address "$PC_CONTAINERD_SOCK" -n k8s.io images pull --plain-http "$R/$spec" >/dev/null
  done
  # CRI learns of images pulled behind its back through events: wait for it.
  for _ in $(seq 1 50); do
    crictl inspecti "$PC_CRI_SANDBOX_IMAGE" >/dev/null 2>&1 && break
    sleep 0.1
  done
}

N=0
pod_json() { # NAME -> file
  N=$((N + 1))
  local f=$PC_WORK/cri/pod-$1-$N.json
  jq -n --arg n "$1-$N" --arg u "uid-$1-$N-$SRANDOM" --arg l "$PC_WORK/cri/logs/$1-$N" '{
    metadata: {name: $n, namespace: "portcullis-cri", uid: $u, attempt: 0},
    log_directory: $l,
    linux: {security_context: {namespace_options: {network: 2}}}}' >"$f"
  mkdir -p "$PC_WORK/cri/logs/$1-$N"
  printf '%s\n' "$f"
}
ctr_json() { # NAME IMAGE CMD... -> file
  local name=$1 image=$2 f=$PC_WORK/cri/ctr-$1-$SRANDOM.json
  shift 2
  jq -n --arg n "$name" --arg i "$R/$image" --args '{
    metadata: {name: $n}, image: {image: $i}, command: $ARGS.positional,
    log_path: ($n + ".log"), linux: {}}' "$@" >"$f"
  printf '%s\n' "$f"
}

# runp NAME [--runtime H]: runs a pod sandbox; sets POD (its ID), POD_JSON, OUT.
runp() {
  local name=$1
  shift
  POD_JSON=$(pod_json "$name")
  POD=''
  if OUT=$(crictl runp "$@" "$POD_JSON" 2>&1); then POD=$(tail -n 1 <<<"$OUT"); fi
}

# create_start NAME IMAGE CMD...: creates and starts a container in POD; sets
# CID, OUT (crictl's output) and RC (0 when it started).
create_start() {
  local name=$1 image=$2 cj
  shift 2
  cj=$(ctr_json "$name" "$image" "$@")
  CID='' RC=1
  if ! OUT=$(crictl create "$POD" "$cj" "$POD_JSON" 2>&1); then return 0; fi
  CID=$(tail -n 1 <<<"$OUT")
  if OUT=$(crictl start "$CID" 2>&1); then RC=0; fi
}

state_of() { crictl inspect "$1" 2>/dev/null | jq -r '.status.state + " " + (.status.exitCode | tostring)'; }

# wait_exited ID: waits (bounded) for the container to exit; prints "STATE CODE".
wait_exited() {
  local s
  for _ in $(seq 1 100); do
    s=$(state_of "$1")
    [[ $s == CONTAINER_EXITED* ]] && break
    sleep 0.1
  done
  printf '%s\n' "$s"
}

# unrecorded: true when the last container (CID) was created and, once
# journald has caught up, has no verdict record; else false, WHY says why.
unrecorded() {
  local n
  WHY=
  [[ -n $CID ]] || { WHY="no container was created: $OUT"; return 1; }
  journal_caught_up || { WHY="journald did not store a marker record within 20 s"; return 1; }
  n=$(journal_count "$CID")
  [[ $n == 0 ]] || { WHY="$n record(s) for $CID"; return 1; }
}

# expect_allow LABEL: the last container started and has an allow record.
expect_allow() {
  local label=$1 jv problems=()
  ((RC == 0)) || problems+=("crictl: $OUT")
  jv=$(journal_field "$CID" PORTCULLIS_VERDICT || echo "(no record)")
  [[ $jv == allow ]] || problems+=("journal verdict for $CID: $jv")
  [[ $(journal_field "$CID" PORTCULLIS_GATE || true) == "$GATE" ]] || problems+=("record not written by the $GATE gate")
  if ((${#problems[@]})); then not_ok "$label" "${problems[@]}"; else ok "$label (allow record for ${CID:0:12})"; fi
}

# expect_refusal LABEL SPEC: the last start was refused with the denial line
# naming SPEC's digest, shown by crictl, and a deny record names the reason.
expect_refusal() {
  local label=$1 spec=$2 want jv problems=() line
  want="portcullis: denied $R/$spec@${DIGEST[$spec]}: no signatures cached for ${DIGEST[$spec]}"
  ((RC != 0)) || problems+=("the container started")
  grep -qF -- "$want" <<<"$OUT" || problems+=("crictl does not show '$want': $OUT")
  # Which layer refused: the shim wrapper (start) or the runc gate (create).
  grep -qF -- "$VIA portcullis: denied $R/$spec@" <<<"$OUT" || problems+=("crictl does not show '$VIA portcullis: denied': $OUT")
  if [[ -n $CID ]]; then
    jv=$(journal_field "$CID" PORTCULLIS_VERDICT || echo "(no record)")
    [[ $jv == deny ]] || problems+=("journal verdict for $CID: $jv")
    [[ $(journal_field "$CID" PORTCULLIS_GATE || true) == "$GATE" ]] || problems+=("record not written by the $GATE gate")
    [[ $(journal_field "$CID" PORTCULLIS_IMAGE_DIGEST || true) == "${DIGEST[$spec]}" ]] ||
      problems+=("deny record lacks the digest ${DIGEST[$spec]}")
  else
    problems+=("no container was created")
  fi
  if ((${#problems[@]})); then not_ok "$label" "${problems[@]}"; else ok "$label"; fi
  line=$(grep -F 'portcullis: denied' <<<"$OUT" | grep -v '^time=' | head -n 1)
  echo "#   crictl shows: ${line:-$OUT}"
}

# The whole kubelet sequence on one containerd, for one way to the gate.
# GATED (yes/no): whether pod containers, not only the pause, reach the gate.
kubelet_cases() {
  local v=$1 mode=$2 gated=$3 tag="$1 $2" s jv
  local -a rt=()
  [[ $mode == handler ]] && rt=(--runtime portcullis)
  VIA="failed to create containerd task: failed to start shim: start failed:"
  GATE=shim
  [[ $mode == node ]] && VIA="OCI runtime create failed:" GATE=runc

  runp "pod" "${rt[@]}"
  if [[ -n $POD ]]; then
    jv=$(journal_field "$POD" PORTCULLIS_VERDICT || echo "(no record)")
    [[ $jv == allow && $(journal_field "$POD" PORTCULLIS_IMAGE_DIGEST || true) == "${DIGEST[cri/pause:1]}" &&
      $(journal_field "$POD" PORTCULLIS_GATE || true) == "$GATE" ]] &&
      ok "$tag: pod sandbox runs, the signed pause image passed the $GATE gate (allow record for ${POD:0:12})" ||
      not_ok "$tag: pause container's allow record" "verdict $jv"
  else
    not_ok "$tag: pod sandbox runs" "$OUT"
    return 0
  fi

  if [[ $gated == yes ]]; then
    create_start init-unsigned cri/init-unsigned:1 /bin/true
    expect_refusal "$tag: unsigned init container refused" cri/init-unsigned:1
  fi
  create_start init cri/init:1 /bin/true
  s=$(wait_exited "$CID")
  if [[ $gated == yes ]]; then
    expect_allow "$tag: signed init container allowed"
  else
    unrecorded && ok "$tag: GAP (T62) shown: the init container's start has no verdict record" ||
      not_ok "$tag: T62 gap (init)" "$WHY"
  fi
  [[ $RC == 0 && $s == "CONTAINER_EXITED 0" ]] && ok "$tag: init container ran to completion before the app ($s)" ||
    not_ok "$tag: init container completes" "rc $RC state '$s' $OUT"

  create_start app cri/app:1 /bin/busybox sleep 3600
  if [[ $gated == yes ]]; then
    expect_allow "$tag: signed app container allowed"
  else
    [[ $RC == 0 ]] && ok "$tag: signed app container runs" || not_ok "$tag: signed app runs" "$OUT"
    unrecorded && ok "$tag: GAP (T62) shown: the app container's start has no verdict record" ||
      not_ok "$tag: T62 gap (app)" "$WHY"
  fi
  [[ $(state_of "$CID") == CONTAINER_RUNNING* ]] && ok "$tag: app container running" || not_ok "$tag: app running" "$(state_of "$CID")"

  create_start sidecar cri/sidecar:1 /bin/busybox sleep 3600
  if [[ $gated == yes ]]; then
    expect_allow "$tag: signed container added to the running pod allowed"
    create_start sidecar-unsigned cri/sidecar-unsigned:1 /bin/busybox sleep 3600
    expect_refusal "$tag: unsigned container added to the running pod refused" cri/sidecar-unsigned:1
    create_start app-unsigned cri/unsigned:1 /bin/busybox sleep 3600
    expect_refusal "$tag: unsigned app container refused" cri/unsigned:1
  else
    # T62: containerd 2.x runs every pod container in the pause's shim
    # without the shim binary's start: the opt-in handler never sees them.
    create_start app-unsigned cri/unsigned:1 /bin/busybox sleep 3600
    WHY=
    if ((RC == 0)) && unrecorded; then
      ok "$tag: GAP (T62) shown: the unsigned app container STARTED in the portcullis pod and has no verdict record"
    else
      not_ok "$tag: T62 gap as documented (unsigned app starts unseen)" "rc $RC${WHY:+; $WHY}: $OUT"
    fi
  fi
  crictl stopp "$POD" >/dev/null 2>&1 || true
  crictl rmp "$POD" >/dev/null 2>&1 && ok "$tag: pod stopped and removed" || not_ok "$tag: pod removed"
}

for v in "${VERSIONS[@]}"; do
  for mode in handler node; do
    t0=$SECONDS
    echo "# containerd $v, $mode"
    if [[ $mode == node && ! -x $PC_BIN_DIR/portcullis-runc ]]; then
      not_ok "$v node: portcullis-runc is built" "$PC_BIN_DIR/portcullis-runc missing (branch runc-gate not merged?)"
      continue
    fi
    use_containerd "$v" "$mode"
    if [[ $mode == handler ]]; then
      dump=$(PC_CONTAINERD_VERSION=$v; "$(pc_containerd_bin)" --config "$(_pc_containerd_config)" config dump 2>/dev/null)
      grep -qE "^ *runtime_type = [\"']io\\.containerd\\.portcullis\\.v2[\"']" <<<"$dump" &&
        ok "$v: containerd loads the packaged drop-in (handler portcullis in config dump)" ||
        not_ok "$v: packaged drop-in loaded" "$(grep -n runtimes <<<"$dump")"
      if grep -qE 'runtimes\.portcullis\.options' <<<"$dump"; then
        # containerd prints an empty options table of its own for some versions;
        # what must not be there is a value in it.
        opts=$(awk '/runtimes\.portcullis\.options\]/ {f = 1; next} /^ *\[/ {f = 0} f && NF' <<<"$dump")
        [[ -z $opts ]] && ok "$v: no runtime options for the portcullis handler" ||
          not_ok "$v: portcullis handler options" "$opts"
      else
        ok "$v: no runtime options for the portcullis handler"
      fi
    fi
    gated=yes
    [[ $mode == handler && $v != 1.* ]] && gated=no
    kubelet_cases "$v" "$mode" "$gated"
    echo "# containerd $v, $mode: $((SECONDS - t0)) s"
  done
done

summary
