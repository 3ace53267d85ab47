#!/usr/bin/env bash
# The shim wrapper on containerd 2.x: the core gate cases through
#   ctr run --runtime io.containerd.portcullis.v2
# on containerd v2.2.9 (shim start prints JSON version 3 output) and v2.4.2
# (shim start reads protobuf bootstrap parameters on stdin), each with its own
# runc shim and ctr (integration/tools.sh), config version 3; plus a slice of
# adversarial.sh's cases on v2.4.2. Every case checks what ctr shows AND the
# journal record of that container ID.
#
# Run after setup.sh and tools.sh, with the workspace built.
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
CACHE=$PORTCULLIS_STATE_DIR/cache/sha256
RUNTIME=io.containerd.portcullis.v2
PC_TOOLS=${PC_TOOLS:-/opt/portcullis-tools}
VERSIONS=(2.2.9 2.4.2)
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR
BASE_PATH=$PATH

for v in "${VERSIONS[@]}"; do
  [[ -x $PC_TOOLS/containerd-v$v/containerd && -x $PC_TOOLS/containerd-v$v/ctr ]] || {
    echo "containerd2: $PC_TOOLS/containerd-v$v missing; run integration/tools.sh" >&2
    exit 1
  }
done

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"

"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/other.key" --public "$KEYS/other.pub" >/dev/null
declare -A DIGEST
for spec in c2/signed:1 c2/unsigned:1 c2/otherkey:1 c2/replayed:1 c2/corrupt:1 c2/lineage:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done
for spec in c2/signed:1 c2/corrupt:1 c2/lineage:1; do
  "$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/$spec" >/dev/null
done
"$SIGN" sign --plain-http --key "$KEYS/other.key" "$R/c2/otherkey:1" >/dev/null
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
  "docker://$R/c2/signed:sha256-${DIGEST[c2/signed:1]#sha256:}.sig" \
  "docker://$R/c2/replayed:sha256-${DIGEST[c2/replayed:1]#sha256:}.sig"
for spec in "${!DIGEST[@]}"; do "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true; done
truncate -s 100 "$CACHE/${DIGEST[c2/corrupt:1]#sha256:}.json"
write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "c2"
images = ["$R/c2/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF

# use_containerd VERSION: a fresh private containerd VERSION (root wiped),
# its ctr first on this shell's PATH.
use_containerd() {
  _pc_ctr_cleanup
  pc_stop_containerd
  _pc_kill_shims
  _pc_umount_work
  rm -rf --one-file-system "$PC_WORK/containerd"
  PATH=$PC_TOOLS/containerd-v$1:$BASE_PATH
  PC_CONTAINERD_VERSION=$1 pc_start_containerd
  for spec in "${!DIGEST[@]}"; do pc_pull "$spec" >/dev/null; done
}

# refuse_task NAME ID PATTERN: the task of an already created container is refused.
refuse_task() {
  local name=$1 id=$2 pattern=$3 out problems=()
  if out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" tasks start "$id" 2>&1); then
    problems+=("the task started")
  fi
  grep -qF "portcullis: denied " <<<"$out" || problems+=("no denial line in: $out")
  grep -qF -- "$pattern" <<<"$out" || problems+=("reason lacks '$pattern': $out")
  [[ $(journal_field "$id" PORTCULLIS_VERDICT || true) == deny ]] || problems+=("no deny record for $id")
  if ((${#problems[@]})); then not_ok "$name" "${problems[@]}"; else ok "$name ($pattern)"; fi
  pc_ctr tasks delete "$id" >/dev/null 2>&1 || true
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
}

for v in "${VERSIONS[@]}"; do
  t0=$SECONDS
  echo "# containerd v$v: $(PATH=$PC_TOOLS/containerd-v$v containerd --version 2>/dev/null | cut -d' ' -f3)"
  use_containerd "$v"
  server=$(ctr --address "$PC_CONTAINERD_SOCK" version | awk '/^Server:/ {s = 1} s && /Version:/ {print $2; exit}')
  [[ $server == "$v"* ]] && ok "v$v: the private containerd is v$v ($server)" || not_ok "v$v: containerd version" "$server"

  start_case "v${v//./}-signed-runs" c2/signed:1 run allow
  [[ $(journal_field "$LAST_ID" PORTCULLIS_IMAGE_DIGEST) == "${DIGEST[c2/signed:1]}" ]] &&
    ok "v$v: allow record names the started digest" || not_ok "v$v: allow record digest"
  [[ $(journal_field "$LAST_ID" PORTCULLIS_NAMESPACE) == "$PC_NS" ]] &&
    ok "v$v: allow record names the namespace" || not_ok "v$v: allow record namespace"
  start_case "v${v//./}-unsigned-refused" c2/unsigned:1 refuse deny \
    "portcullis: denied $R/c2/unsigned:1@${DIGEST[c2/unsigned:1]}: no signatures cached for ${DIGEST[c2/unsigned:1]}"
  echo "#   ctr shows: $(grep -F 'portcullis: denied' <<<"$LAST_OUT" | head -n 1)"
  [[ $(journal_field "$LAST_ID" PRIORITY) == 3 ]] && ok "v$v: denial logged at priority err" || not_ok "v$v: deny priority"
  start_case "v${v//./}-signed-by-another-key-refused" c2/otherkey:1 refuse deny "no signature verifies with the rule's signer(s)"

  # A detached task: the wrapper handed over (exec), the 2.x runc shim serves it.
  id=$(new_id "detached-${v//./}")
  if pc_ctr run -d --runtime "$RUNTIME" "$R/c2/signed:1" "$id" /bin/busybox sleep 30 >/dev/null 2>&1; then
    bundle=$PC_WORK/containerd/state/io.containerd.runtime.v2.task/$PC_NS/$id
    if pgrep -f "^$PC_TOOLS/containerd-v$v/containerd-shim-runc-v2 .*-id $id( |\$)" >/dev/null ||
      pgrep -f "containerd-shim-runc-v2 .*-id $id( |\$)" >/dev/null; then
      ok "v$v: the runc shim serves the detached task"
    else
      not_ok "v$v: runc shim serves the task" "$(pgrep -af containerd-shim || true)"
    fi
    if [[ -s $bundle/bootstrap.json ]] && jq -e '.version >= 3' "$bundle/bootstrap.json" >/dev/null 2>&1; then
      ok "v$v: containerd recorded the shim's version $(jq -r .version "$bundle/bootstrap.json") bootstrap (start output passed through)"
    else
      not_ok "v$v: shim bootstrap recorded" "$(cat "$bundle/bootstrap.json" 2>&1)"
    fi
    if pgrep -f '^([^ ]*/)?containerd-shim-portcullis-v2( |$)' >/dev/null; then
      not_ok "v$v: no wrapper process stays behind" "$(pgrep -af containerd-shim-portcullis-v2)"
    else
      ok "v$v: no wrapper process stays behind"
    fi
    pc_ctr tasks kill -s KILL "$id" >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      pc_ctr tasks delete "$id" >/dev/null 2>&1 && break
      sleep 0.1
    done
    pc_ctr containers rm "$id" >/dev/null 2>&1 && ok "v$v: delete passes through" || not_ok "v$v: delete passthrough"
  else
    not_ok "v$v: detached signed task starts"
  fi

  if [[ $v == "${VERSIONS[-1]}" ]]; then
    echo "# adversarial slice on v$v"
    start_case "v${v//./}-signature-replayed-from-another-image-refused" c2/replayed:1 refuse deny \
      "a signature replayed from another image never counts"
    start_case "v${v//./}-corrupt-cache-entry-refused" c2/corrupt:1 refuse deny "is corrupt"
    rootfs=$PC_WORK/bare-rootfs
    mkdir -p "$rootfs/bin" && cp /bin/busybox "$rootfs/bin/" && ln -sf busybox "$rootfs/bin/true"
    id=$(new_id rootfs)
    pc_ctr containers create --runtime "$RUNTIME" --rootfs "$rootfs" "$id" /bin/true >/dev/null
    refuse_task "v$v: ctr run --rootfs without an image refused" "$id" "bare rootfs"
    id=$(new_id emptysnap)
    pc_ctr containers create --runtime "$RUNTIME" "$R/c2/lineage:1" "$id" /bin/true >/dev/null
    pc_ctr snapshots rm "$id" >/dev/null
    pc_ctr snapshots prepare "$id" >/dev/null
    refuse_task "v$v: snapshot swapped for an empty one refused" "$id" "does not descend from the verified image"
    # the tag moved after the pull: containerd holds the first image, the
    # registry's tag (and the node cache) now name a signed one
    moved_pulled=$(pc_push_image c2/moved:1 c2-moved-1 | tail -n 1)
    pc_pull c2/moved:1 >/dev/null
    pc_push_image c2/moved:1 c2-moved-2 >/dev/null
    "$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/c2/moved:1" >/dev/null
    "$PC" fetch --plain-http "$R/c2/moved:1" >/dev/null 2>&1 || true
    start_case "v${v//./}-tag-moved-after-pull-refused" c2/moved:1 refuse deny "no signatures cached for $moved_pulled"
  fi
  echo "# containerd v$v: $((SECONDS - t0)) s"
done

summary
