#!/usr/bin/env bash
# Platform-binding suite (issue 17 parts 1 and 6) on the real containerd,
# runc, journald and docker-registry, through --runtime
# io.containerd.portcullis.v2 under mode = "enforce", default = "deny".
#
# The registry-only attack: an unsigned index whose first entry is an
# unsigned manifest M2 that containerd takes (spelled {"os":"Linux"},
# {"architecture":"x86_64"}, {"os":""}, or nested in an inner index), and
# whose second entry is the genuinely signed M1 with the same layers. Each is
# refused with a reason naming M2 (the manifest containerd would run), in
# ctr's error and in the journal. Controls: a genuine multi-arch index with a
# signed platform manifest runs; an index signed as a whole runs even with
# two candidates; an image signed 65 times (65 .sig layers) runs.
#
# PC_PLATFORM_CONTAINERD_DIR=/opt/portcullis-tools/containerd-v2.4.2 runs the
# same cases on that containerd (its containerd and ctr first on PATH).
#
# PC_PLATFORM_GATE=runc runs them through the node-wide runc gate instead:
# containerd started with runc -> $PC_BIN_DIR/portcullis-runc first on its
# PATH, and `ctr run --runtime io.containerd.runc.v2` (ctr's default runtime,
# the plain runc shim); the refusal then reaches ctr as `OCI runtime create
# failed: portcullis: denied …` and the journal record has PORTCULLIS_GATE=runc.
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
if [[ -n ${PC_PLATFORM_CONTAINERD_DIR:-} ]]; then
  export PATH="$PC_PLATFORM_CONTAINERD_DIR:$PATH"
fi
PC_PLATFORM_GATE=${PC_PLATFORM_GATE:-shim}
case $PC_PLATFORM_GATE in
shim) ;;
runc) RUNTIME=io.containerd.runc.v2 ;;
*)
  echo "platform: PC_PLATFORM_GATE must be shim or runc (got '$PC_PLATFORM_GATE')" >&2
  exit 1
  ;;
esac

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
KEYS=$PC_WORK/keys
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)
trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
if [[ $PC_PLATFORM_GATE == runc ]]; then
  # Node-wide enforcement: runc on containerd's PATH is the gate.
  rm -rf "$PC_WORK/runtime-bin"
  mkdir -p "$PC_WORK/runtime-bin"
  ln -s "$PC_BIN_DIR/portcullis-runc" "$PC_WORK/runtime-bin/runc"
  export PC_CONTAINERD_PATH_PREPEND=$PC_WORK/runtime-bin
fi
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"
echo "# containerd $(ctr --version | awk '{print $3}'), gate: $PC_PLATFORM_GATE (runtime $RUNTIME)"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub"
write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "plat"
images = ["$R/plat/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF

sign() { "$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/$1" >/dev/null; }
# put_index REPO:TAG JSON: pushes the exact bytes; prints the index digest.
put_index() {
  local f
  f=$(mktemp "$PC_WORK/index.XXXXXX")
  printf '%s' "$2" >"$f"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
    --data-binary "@$f" "http://$R/v2/${1%%:*}/manifests/${1#*:}" >/dev/null
  printf 'sha256:%s\n' "$(sha256sum "$f" | cut -d' ' -f1)"
  rm -f "$f"
}
desc() { # desc REPO DIGEST [MEDIA TYPE]: a descriptor of a manifest or index in REPO
  local mt=${3:-application/vnd.oci.image.manifest.v1+json} size
  size=$(curl -fsS -H "Accept: $mt" "http://$R/v2/$1/manifests/$2" | wc -c)
  jq -cn --arg d "$2" --argjson s "$size" --arg m "$mt" '{mediaType:$m,digest:$d,size:$s}'
}
index_of() { # index_of ENTRIES-JSON: a compact OCI index over those entries
  jq -cn --argjson m "$1" '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:$m}'
}
prepare() { # prepare REPO:TAG: pull with containerd and fetch its signatures (failure is the gate's to report)
  pc_pull "$1" >/dev/null 2>&1 || echo "# pull of $1 failed"
  "$PC" fetch --plain-http "$R/$1" >/dev/null 2>&1 || true
}
# refuse NAME REPO:TAG PATTERN: refused, PATTERN in ctr's error and the journal reason.
refuse() {
  local before=$FAIL reason
  prepare "$2"
  start_case "$1" "$2" refuse deny "$3"
  if ((FAIL == before)); then
    reason=$(journal_field "$LAST_ID" PORTCULLIS_REASON || true)
    grep -qF -- "$3" <<<"$reason" ||
      not_ok "$1: journal reason" "PORTCULLIS_REASON lacks '$3': $reason"
    if [[ $PC_PLATFORM_GATE == runc ]]; then
      [[ $(journal_field "$LAST_ID" PORTCULLIS_GATE || true) == runc ]] ||
        not_ok "$1: journal record from PORTCULLIS_GATE=runc" "$(journal_field "$LAST_ID" PORTCULLIS_GATE || true)"
      grep -qF "OCI runtime create failed: portcullis: denied" <<<"$LAST_OUT" ||
        not_ok "$1: refused at runc create" "$LAST_OUT"
    fi
  fi
  printf '#   %s\n' "$(grep -F 'portcullis: denied' <<<"$LAST_OUT" | head -n1)"
}
allow() { # allow NAME REPO:TAG
  prepare "$2"
  start_case "$1" "$2" run allow
}

echo "# images: M1 signed, M2 unsigned, same layer, different config"
M1=$(pc_push_image plat/app:m1 M1 | tail -n1)
M2=$(pc_push_image plat/app:m2 M2 | tail -n1)
sign "plat/app@$M1"
D1=$(desc plat/app "$M1")
D2=$(desc plat/app "$M2")
NATIVE='{"os":"linux","architecture":"amd64"}'
attack() { # attack TAG PLATFORM-OF-M2: [M2 with that platform, M1 linux/amd64]
  put_index "plat/app:$1" "$(index_of "[$(jq -c --argjson p "$2" '. + {platform:$p}' <<<"$D2"), $(jq -c --argjson p "$NATIVE" '. + {platform:$p}' <<<"$D1")]")" >/dev/null
}
attack os-upper '{"os":"Linux","architecture":"amd64"}'
attack arch-x86_64 '{"os":"linux","architecture":"x86_64"}'
attack os-empty '{"os":"","architecture":"amd64"}'
INNER=$(put_index plat/app:inner "$(index_of "[$(jq -c --argjson p "$NATIVE" '. + {platform:$p}' <<<"$D2")]")")
DI=$(desc plat/app "$INNER" application/vnd.oci.image.index.v1+json)
NESTED=$(put_index plat/app:nested "$(index_of "[$(jq -c --argjson p "$NATIVE" '. + {platform:$p}' <<<"$DI"), $(jq -c --argjson p "$NATIVE" '. + {platform:$p}' <<<"$D1")]")")

echo "# the registry-only attack: containerd would run M2 = $M2"
refuse platform-os-upper-case plat/app:os-upper "containerd runs $M2"
refuse platform-arch-x86_64 plat/app:arch-x86_64 "containerd runs $M2"
refuse platform-os-empty plat/app:os-empty "containerd runs $M2"
refuse platform-nested-index plat/app:nested "containerd runs $M2"

echo "# controls"
pc_push_index plat/multi:1 multi >/dev/null
P=$(pc_platform_digest plat/multi:1)
sign "plat/multi@$P"
allow platform-multi-arch-signed-manifest plat/multi:1
SIGNED_IDX=$(put_index plat/app:signed-index "$(index_of "[$(jq -c --argjson p '{"os":"Linux","architecture":"amd64"}' '. + {platform:$p}' <<<"$D2"), $(jq -c --argjson p "$NATIVE" '. + {platform:$p}' <<<"$D1")]")")
sign "plat/app@$SIGNED_IDX"
allow platform-index-signed-whole plat/app:signed-index
# The same nested index once signed as a whole: fetch follows the inner index, the start runs.
sign "plat/app@$NESTED"
allow platform-nested-index-signed-whole plat/app:nested

echo "# part 6: an image signed 65 times (65 .sig layers)"
R65=$(pc_push_image plat/resigned:1 resigned | tail -n1)
for _ in $(seq 1 65); do sign "plat/resigned@$R65"; done
n=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$R/v2/plat/resigned/manifests/sha256-${R65#sha256:}.sig" | jq '.layers | length')
check "the .sig of plat/resigned has 65 layers ($n)" test "$n" = 65
allow platform-sig-65-layers plat/resigned:1
src=$(jq -r '.artifacts[0].source' "$PORTCULLIS_STATE_DIR/cache/sha256/${R65#sha256:}.json" 2>/dev/null || true)
check "the cache entry says which layers were examined: $src" grep -qF "newest 64 of 65 layers" <<<"$src"

summary
