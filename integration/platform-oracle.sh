#!/usr/bin/env bash
# Records which manifest real containerd takes from each image-index shape:
# the oracle for src/containerd/platform.rs' unit test (tests/data/platform-oracle.json).
#
#   PC_WORK=/tmp/pc-plat PC_REGISTRY=127.0.0.1:5103 integration/platform-oracle.sh [OUT]
#
# Two manifests A and B (same busybox layer, config labels
# org.example.variant=A / B) are pushed to a loopback registry; each shape is
# an index over them, pushed as exact bytes. For each containerd (Debian's
# 1.6 on PATH, then /opt/portcullis-tools/containerd-v2.4.2, each with a
# fresh private root), the script pulls the index with `ctr images pull
# --plain-http` (which unpacks), creates a container from it, and reads the
# variant label containerd copied from the config it took (`ctr containers
# info`): that is the config the container would run. A failed pull or
# create is recorded as "error".
set -uo pipefail
source "$(dirname "$0")/images.sh"
OUT=${1:-$PC_REPO_ROOT/tests/data/platform-oracle.json}
C2=${PC_CONTAINERD2_DIR:-/opt/portcullis-tools/containerd-v2.4.2}
trap pc_stop_all EXIT

pc_start_registry || exit 1
A=$(pc_push_image plat:a A) || exit 1
B=$(pc_push_image plat:b B) || exit 1
desc() { # desc DIGEST: the registry's descriptor of a manifest in repo plat
  local size
  size=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$PC_REGISTRY/v2/plat/manifests/$1" | wc -c) || return 1
  jq -cn --arg d "$1" --argjson s "$size" \
    '{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$d,size:$s}'
}
DA=$(desc "$A") && DB=$(desc "$B") || exit 1
WORKF=$PC_WORK/oracle
mkdir -p "$WORKF"

# put_index TAG JSON: pushes the exact compact bytes; prints "digest size".
put_index() {
  local f=$WORKF/$1.json
  printf '%s' "$2" >"$f"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
    --data-binary "@$f" "http://$PC_REGISTRY/v2/plat/manifests/$1" >/dev/null || {
    echo "pushing index $1 failed" >&2
    return 1
  }
  printf 'sha256:%s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")"
}

# Inner index for the nested shapes: [A linux/amd64].
INNER=$(jq -cn --argjson a "$DA" '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:[($a+{platform:{os:"linux",architecture:"amd64"}})]}')
read -r ID IS < <(put_index inner "$INNER") || exit 1
DI=$(jq -cn --arg d "$ID" --argjson s "$IS" '{mediaType:"application/vnd.oci.image.index.v1+json",digest:$d,size:$s}')

# name # jq list of entries over $a, $b, $i (inner index) # expected ambiguity
SHAPES=(
  'exact#[$a+{platform:{os:"linux",architecture:"amd64"}}]#false'
  'foreign_then_native#[$b+{platform:{os:"linux",architecture:"arm64"}},$a+{platform:{os:"linux",architecture:"amd64"}}]#false'
  'os_upper_case_first#[$a+{platform:{os:"Linux",architecture:"amd64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'arch_x86_64_first#[$a+{platform:{os:"linux",architecture:"x86_64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'arch_x86-64_first#[$a+{platform:{os:"linux",architecture:"x86-64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'arch_upper_AMD64_first#[$a+{platform:{os:"linux",architecture:"AMD64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'empty_os_first#[$a+{platform:{os:"",architecture:"amd64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'duplicate_entries#[$a+{platform:{os:"linux",architecture:"amd64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'duplicate_same_digest#[$a+{platform:{os:"linux",architecture:"amd64"}},$a+{platform:{os:"linux",architecture:"amd64"}}]#false'
  'variant_v2_first#[$a+{platform:{os:"linux",architecture:"amd64",variant:"v2"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'variant_v1_first#[$a+{platform:{os:"linux",architecture:"amd64",variant:"v1"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'variant_v3_only#[$a+{platform:{os:"linux",architecture:"amd64",variant:"v3"}}]#false'
  'i386_fallback#[$b+{platform:{os:"linux",architecture:"arm64"}},$a+{platform:{os:"linux",architecture:"386"}}]#false'
  'i386_before_amd64#[$a+{platform:{os:"linux",architecture:"386"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'no_platform_first#[$a,$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'os_features_first#[$a+{platform:{os:"linux",architecture:"amd64","os.features":["x"]}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'nested_with_platform_first#[$i+{platform:{os:"linux",architecture:"amd64"}},$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'nested_without_platform_first#[$i,$b+{platform:{os:"linux",architecture:"amd64"}}]#true'
  'nested_only#[$i]#false'
  'unknown_media_type_first#[($a+{platform:{os:"linux",architecture:"amd64"}}|.mediaType="application/vnd.example.unknown+json"),$b+{platform:{os:"linux",architecture:"amd64"}}]#false'
  'attestation_unknown_platform#[$b+{platform:{os:"unknown",architecture:"unknown"}},$a+{platform:{os:"linux",architecture:"amd64"}}]#false'
)

declare -A IDX_JSON IDX_DIGEST
for s in "${SHAPES[@]}"; do
  IFS='#' read -r name entries _ <<<"$s"
  json=$(jq -cn --argjson a "$DA" --argjson b "$DB" --argjson i "$DI" \
    "{schemaVersion:2,mediaType:\"application/vnd.oci.image.index.v1+json\",manifests:$entries}") || exit 1
  read -r d _ < <(put_index "$name" "$json") || exit 1
  IDX_JSON[$name]=$json
  IDX_DIGEST[$name]=$d
done

declare -A SEEN
observe() { # observe VERSION-KEY: pull and create each shape, record the label
  local key=$1 name out label n=0
  for s in "${SHAPES[@]}"; do
    name=${s%%#*}
    n=$((n + 1))
    if out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" images pull --plain-http "$PC_REGISTRY/plat:$name" 2>&1) &&
      out=$(timeout 30 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" containers create "$PC_REGISTRY/plat:$name" "o$n" 2>&1) &&
      label=$(pc_ctr containers info "o$n" | jq -r '.Labels["org.example.variant"] // "none"'); then
      SEEN[$key.$name]=$label
    else
      SEEN[$key.$name]="error: $(tail -n1 <<<"$out")"
    fi
    printf '%s %s: %s\n' "$key" "$name" "${SEEN[$key.$name]}" >&2
  done
}

pc_start_containerd || exit 1
V1=$(ctr --version | awk '{print $3}')
observe v1
for c in $(pc_ctr containers ls -q); do pc_ctr containers delete "$c" >/dev/null; done
pc_stop_containerd || exit 1
rm -rf "$PC_WORK/containerd/root" "$PC_WORK/containerd/state"
export PATH="$C2:$PATH"
pc_start_containerd || exit 1
V2=$("$C2/ctr" --version | awk '{print $3}')
observe v2
for c in $(pc_ctr containers ls -q); do pc_ctr containers delete "$c" >/dev/null; done

{
  for s in "${SHAPES[@]}"; do
    IFS='#' read -r name _ amb <<<"$s"
    jq -cn --arg name "$name" --arg index "${IDX_JSON[$name]}" --arg digest "${IDX_DIGEST[$name]}" \
      --arg v1 "${SEEN[v1.$name]}" --arg v2 "${SEEN[v2.$name]}" --argjson amb "$amb" \
      '{name:$name,index_digest:$digest,index:$index,ambiguous:$amb,observed:{"containerd-1.6":$v1,"containerd-2.4":$v2}}'
  done
} | jq -s --arg a "$A" --arg b "$B" --arg id "$ID" --arg inner "$INNER" \
  --arg v1 "$V1" --arg v2 "$V2" '{
    produced_by: "integration/platform-oracle.sh: each index pushed to docker-registry on loopback, pulled with ctr images pull --plain-http, container created, the config label containerd took read from ctr containers info",
    node: "linux/amd64",
    containerd: {"containerd-1.6": $v1, "containerd-2.4": $v2},
    manifests: {($a): "A", ($b): "B"},
    nested: {($id): $inner},
    shapes: .
  }' >"$OUT" || exit 1
echo "wrote $OUT" >&2
