# shellcheck shell=bash source-path=SCRIPTDIR
# Tiny test images for Portcullis' integration tests, built from the static
# busybox with umoci and pushed with skopeo to the private registry of env.sh.
#
#   source integration/images.sh      # sources env.sh too if needed
#   pc_start_registry
#   d=$(pc_push_image app:1 one)      # manifest digest, sha256:...
#   i=$(pc_push_index multi:1 one)    # index digest
#   p=$(pc_platform_digest multi:1)   # this machine's manifest in the index
#
# Every image has the same single layer (/bin/busybox, /bin/sh and /bin/true
# as symlinks to it) and a config label org.example.variant=LABEL, so each
# LABEL gives its own config and manifest digest, and the same LABEL gives
# the same digests again (within one PC_WORK: the base layer is built once per
# PC_WORK and cached in $PC_WORK/images).
#
# Functions print only the digest on stdout; tool output goes to
# $PC_WORK/logs/images.log (its tail is shown on stderr when a step fails).

if ! declare -F pc_ctr >/dev/null; then
  # shellcheck source=env.sh
  source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
fi

PC_BUSYBOX=${PC_BUSYBOX:-/bin/busybox}
PC_VARIANT_LABEL=${PC_VARIANT_LABEL:-org.example.variant}

# --------------------------------------------------------------- platforms

# OCI architecture name of this machine (GOARCH spelling).
pc_oci_arch() {
  local deb
  deb=$(dpkg --print-architecture) || return 1
  case $deb in
    amd64) echo amd64 ;;
    arm64) echo arm64 ;;
    armhf | armel) echo arm ;;
    i386) echo 386 ;;
    ppc64el) echo ppc64le ;;
    s390x) echo s390x ;;
    riscv64) echo riscv64 ;;
    mips64el) echo mips64le ;;
    *) echo "$deb" ;;
  esac
}

# The architecture of the index's second, non-runnable manifest.
pc_foreign_arch() {
  if [[ -n ${PC_FOREIGN_ARCH:-} ]]; then
    echo "$PC_FOREIGN_ARCH"
  elif [[ $(pc_oci_arch) == arm64 ]]; then
    echo amd64
  else
    echo arm64
  fi
}

# ---------------------------------------------------------------- internals

_pc_img_dir() { printf '%s\n' "$PC_WORK/images"; }
_pc_img_layout() { printf '%s\n' "$PC_WORK/images/layout"; }
_pc_img_log() { printf '%s\n' "$PC_WORK/logs/images.log"; }

# _pc_img_run CMD...: runs a tool with its output in the images log.
_pc_img_run() {
  local log
  log=$(_pc_img_log)
  printf '+ %s\n' "$*" >>"$log"
  if ! "$@" </dev/null >>"$log" 2>&1; then
    _pc_err "failed: $*"
    _pc_tail_log "$log" 15
    return 1
  fi
}

# REPO:TAG (TAG defaults to latest) -> "$PC_REGISTRY/REPO:TAG"
_pc_img_ref() {
  local ref=$1
  [[ -n $ref ]] || {
    _pc_err "image reference missing (REPO:TAG)"
    return 1
  }
  [[ ${ref##*/} == *:* ]] || ref=$ref:latest
  printf '%s/%s\n' "$PC_REGISTRY" "$ref"
}

# Layout tag names for a label: umoci wants [A-Za-z0-9._-], labels may hold
# anything, so a hash of the label stands for it.
_pc_img_tag() {
  local kind=$1 label=$2 h
  h=$(printf '%s' "$label" | sha256sum | cut -c1-24)
  printf '%s-%s\n' "$kind" "$h"
}

# Descriptor (without annotations) of a tag in the layout's index.json.
_pc_img_desc() {
  jq -ce --arg t "$1" \
    '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)]
     | last | select(. != null) | del(.annotations)' \
    "$(_pc_img_layout)/index.json"
}

_pc_img_check_busybox() {
  if [[ ! -x $PC_BUSYBOX ]]; then
    _pc_err "$PC_BUSYBOX missing (apt-get install busybox-static, or run integration/setup.sh)"
    return 1
  fi
  # Debian's dynamic "busybox" package installs /bin/busybox too; it would not
  # run in an image without a libc.
  if command -v readelf >/dev/null && LC_ALL=C readelf -l "$PC_BUSYBOX" 2>/dev/null | grep -q INTERP; then
    _pc_err "$PC_BUSYBOX is dynamically linked; the test images need busybox-static"
    return 1
  fi
}

# Builds the cached base image (tag "base") once per PC_WORK.
_pc_img_ensure_base() {
  local dir layout tmp arch
  dir=$(_pc_img_dir)
  layout=$(_pc_img_layout)
  [[ -e $dir/.base-ok && -f $layout/index.json ]] && return 0
  _pc_img_check_busybox || return 1
  arch=$(pc_oci_arch) || return 1
  rm -rf "$layout"
  tmp=$(mktemp -d "$dir/build.XXXXXX") || return 1
  _pc_img_run umoci init --layout "$tmp/layout" &&
    _pc_img_run umoci new --image "$tmp/layout:base" &&
    _pc_img_run umoci unpack --image "$tmp/layout:base" "$tmp/bundle" &&
    install -D -m 0755 "$PC_BUSYBOX" "$tmp/bundle/rootfs/bin/busybox" &&
    ln -s busybox "$tmp/bundle/rootfs/bin/sh" &&
    ln -s busybox "$tmp/bundle/rootfs/bin/true" &&
    _pc_img_run umoci repack --image "$tmp/layout:base" "$tmp/bundle" &&
    _pc_img_run umoci config --image "$tmp/layout:base" --no-history \
      --os linux --architecture "$arch" \
      --config.env PATH=/bin --config.cmd /bin/sh &&
    mv "$tmp/layout" "$layout" &&
    : >"$dir/.base-ok"
  local rc=$?
  rm -rf "$tmp"
  ((rc == 0)) || _pc_err "building the base image failed"
  return "$rc"
}

# _pc_img_variant KIND ARCH LABEL: makes (or reuses) the layout tag of the
# base image with architecture ARCH and the variant label; prints the tag.
_pc_img_variant() {
  local kind=$1 arch=$2 label=$3 tag
  tag=$(_pc_img_tag "$kind" "$label") || return 1
  if ! _pc_img_desc "$tag" >/dev/null; then
    _pc_img_run umoci config --image "$(_pc_img_layout):base" --tag "$tag" \
      --no-history --architecture "$arch" \
      --config.label "$PC_VARIANT_LABEL=$label" || return 1
  fi
  printf '%s\n' "$tag"
}

# _pc_img_push TAG REPO:TAG [skopeo options]: pushes a layout tag unchanged
# (digests preserved) and prints the digest of what was pushed.
_pc_img_push() {
  local tag=$1 dest dfile
  dest=$(_pc_img_ref "$2") || return 1
  shift 2
  dfile=$(_pc_img_dir)/digest.$tag
  rm -f "$dfile"
  _pc_img_run skopeo copy --policy "$(_pc_img_dir)/policy.json" \
    --dest-tls-verify=false --preserve-digests --format oci \
    --digestfile "$dfile" "$@" \
    "oci:$(_pc_img_layout):$tag" "docker://$dest" || return 1
  local digest
  digest=$(<"$dfile")
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || {
    _pc_err "skopeo wrote no digest for $dest"
    return 1
  }
  printf '%s\n' "$digest"
}

# Shared set-up of the push functions; call in the locked subshell.
_pc_img_prepare() {
  _pc_prepare_work || return 1
  mkdir -p "$(_pc_img_dir)" || return 1
  local pol
  pol=$(_pc_img_dir)/policy.json
  [[ -s $pol ]] || echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$pol" || return 1
  _pc_img_ensure_base
}

_pc_img_lockfile() {
  _pc_prepare_work >/dev/null || return 1
  mkdir -p "$(_pc_img_dir)" && printf '%s\n' "$(_pc_img_dir)/.lock"
}

# ---------------------------------------------------------------- public

# pc_push_image REPO:TAG LABEL: pushes a single-platform image (this
# machine's platform, runnable) to $PC_REGISTRY/REPO:TAG; prints its
# manifest digest.
pc_push_image() {
  local ref=${1:-} label=${2:-} lock
  [[ -n $ref && -n $label ]] || {
    _pc_err "usage: pc_push_image REPO:TAG LABEL"
    return 1
  }
  lock=$(_pc_img_lockfile) || return 1
  (
    flock 9 || exit 1
    _pc_img_prepare || exit 1
    tag=$(_pc_img_variant img "$(pc_oci_arch)" "$label") || exit 1
    _pc_img_push "$tag" "$ref"
  ) 9>"$lock"
}

# pc_push_index REPO:TAG LABEL: pushes an OCI image index holding a manifest
# for another architecture (pc_foreign_arch, listed first) and one for this
# machine's platform (the image pc_push_image makes for LABEL, runnable);
# prints the index digest.
pc_push_index() {
  local ref=${1:-} label=${2:-} lock
  [[ -n $ref && -n $label ]] || {
    _pc_err "usage: pc_push_index REPO:TAG LABEL"
    return 1
  }
  lock=$(_pc_img_lockfile) || return 1
  (
    flock 9 || exit 1
    _pc_img_prepare || exit 1
    layout=$(_pc_img_layout)
    arch=$(pc_oci_arch) || exit 1
    farch=$(pc_foreign_arch) || exit 1
    ntag=$(_pc_img_variant img "$arch" "$label") || exit 1
    ftag=$(_pc_img_variant "foreign-$farch" "$farch" "$label") || exit 1
    ndesc=$(_pc_img_desc "$ntag") || exit 1
    fdesc=$(_pc_img_desc "$ftag") || exit 1
    itag=$(_pc_img_tag idx "$label") || exit 1
    tmp=$(mktemp "$(_pc_img_dir)/index.XXXXXX") || exit 1
    # Compact JSON: the bytes pushed are exactly these, digest preserved.
    jq -cn --argjson n "$ndesc" --argjson f "$fdesc" \
      --arg na "$arch" --arg fa "$farch" '{
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          ($f + {platform: {architecture: $fa, os: "linux"}}),
          ($n + {platform: {architecture: $na, os: "linux"}})
        ]}' | tr -d '\n' >"$tmp" || exit 1
    hex=$(sha256sum "$tmp" | cut -d' ' -f1) || exit 1
    size=$(stat -c %s "$tmp") || exit 1
    mv "$tmp" "$layout/blobs/sha256/$hex" || exit 1
    # Tag it in the layout's index.json (replacing an older entry).
    jq --arg t "$itag" --arg d "sha256:$hex" --argjson s "$size" '
      .manifests |= ([.[] | select(.annotations["org.opencontainers.image.ref.name"] != $t)]
        + [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
            annotations: {"org.opencontainers.image.ref.name": $t}}])' \
      "$layout/index.json" >"$layout/index.json.new" &&
      mv "$layout/index.json.new" "$layout/index.json" || exit 1
    _pc_img_push "$itag" "$ref" --all
  ) 9>"$lock"
}

# pc_manifest_raw REPO:TAG: the manifest or index bytes the registry serves.
pc_manifest_raw() {
  local src
  src=$(_pc_img_ref "${1:-}") || return 1
  skopeo inspect --raw --tls-verify=false "docker://$src"
}

# pc_registry_digest REPO:TAG: digest of the manifest or index at REPO:TAG.
pc_registry_digest() {
  local raw
  raw=$(pc_manifest_raw "${1:-}" && echo .) || return 1
  raw=${raw%.} # command substitution would drop a trailing newline
  printf 'sha256:%s\n' "$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
}

# pc_platform_digest REPO:TAG: digest of this machine's platform manifest
# inside the index at REPO:TAG (for a plain manifest: its own digest).
pc_platform_digest() {
  local raw arch digest
  raw=$(pc_manifest_raw "${1:-}") || return 1
  arch=$(pc_oci_arch) || return 1
  if jq -e 'has("manifests")' >/dev/null <<<"$raw"; then
    digest=$(jq -r --arg a "$arch" \
      '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a)]
       | first | .digest // empty' <<<"$raw") || return 1
    [[ -n $digest ]] || {
      _pc_err "no linux/$arch manifest in the index at $1"
      return 1
    }
    printf '%s\n' "$digest"
  else
    pc_registry_digest "$1"
  fi
}
