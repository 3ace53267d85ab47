#!/usr/bin/env bash
# Issue 14 item 5: multi-arch images signed or attested on the index, with
# the real cosign (v3, integration/tools.sh) and crane (go-containerregistry
# v0.22.1), on real parts: Debian's docker-registry on loopback, containerd
# (1.6 by default; PC_CONTAINERD_VERSION=2.4.2 for the pinned 2.x; test-all
# runs both) with runc, journald, through --runtime io.containerd.portcullis.v2, mode = "enforce",
# default = "deny".
#
# Each index lists a linux/amd64 manifest (runs here) and a linux/arm64 one,
# each with its own top layer (so each platform has its own layer chain, as
# real multi-arch images do), built with `crane append`, `crane mutate
# --set-platform` and `crane index append`. `ctr run --platform linux/arm64`
# (after `ctr pull --platform linux/arm64`) takes the sibling manifest; its
# busybox still runs on this node, so the refusal is the gate's.
#
# The decision (docs/THREAT-MODEL.md T75): a signature or provenance over
# the index digest admits whichever manifest of that index the container's
# rootfs was unpacked from (this node's pick, or another platform chosen
# with --platform: the signer vouched for every manifest the index lists);
# a signature over one platform manifest admits that manifest only.
#
# 25 checks, about 70 s on containerd 1.6.20 and 35 s on 2.4.2 (loaded 2-core
# machine). Ends with "N passed, M failed".
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

PC="$PC_BIN_DIR/portcullis"
TOOLS=${PC_TOOLS:-/opt/portcullis-tools}
COSIGN=$TOOLS/bin/cosign
CRANE=$TOOLS/bin/crane
for b in "$COSIGN" "$CRANE"; do
  [[ -x $b ]] || { echo "multiarch.sh: $b missing: run integration/tools.sh" >&2; exit 1; }
done
KEYS=$PC_WORK/keys
GOOD_BUILDER=https://builder.example/slsa/v1
GOOD_SOURCE=https://git.example/acme/app
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR
export COSIGN_PASSWORD=portcullis-it TUF_ROOT=$PC_WORK/tuf

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)
trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR" "$TUF_ROOT" "$PC_WORK/logs"
echo "# tools: cosign $("$COSIGN" version 2>/dev/null | awk '/^GitVersion:/ {print $2}'), crane $("$CRANE" version), containerd $(containerd --version | awk '{print $3}'), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')"

(cd "$KEYS" && "$COSIGN" generate-key-pair --output-key-prefix release >/dev/null 2>&1)
LEGACY=(--new-bundle-format=false --use-signing-config=false --tlog-upload=false)
cosign_do() { # VERB REPO@DIGEST [options]: cosign VERB with the release key, legacy form
  local verb=$1 ref=$2 log
  shift 2
  log=$PC_WORK/logs/cosign-$verb-${ref//[:\/@]/-}.log
  timeout 120 "$COSIGN" "$verb" --key "$KEYS/release.key" --allow-http-registry -y "${LEGACY[@]}" "$@" \
    "$R/$ref" >"$log" 2>&1 || { not_ok "cosign $verb $ref" "$(tail -n 5 "$log")"; return 0; }
}
crane() { "$CRANE" --insecure "$@" 2>>"$PC_WORK/logs/crane.log"; }

# multiarch REPO LABEL: pushes REPO:amd64, REPO:arm64 (each the base image
# for LABEL plus its own one-file layer) and REPO:1, an OCI index of both;
# sets IDX, AMD, ARM to the digests.
multiarch() {
  local repo=$1 label=$2 arch d
  pc_push_image "$repo:base" "$label" >/dev/null
  for arch in amd64 arm64; do
    d=$PC_WORK/layer-$label-$arch
    mkdir -p "$d"
    echo "$label $arch" >"$d/platform"
    tar -C "$d" -cf "$d.tar" platform
    crane append -b "$R/$repo:base" -f "$d.tar" -t "$R/$repo:$arch" >/dev/null
    [[ $arch == amd64 ]] || crane mutate --set-platform "linux/$arch" -t "$R/$repo:$arch" "$R/$repo:$arch" >/dev/null
  done
  crane index append -m "$R/$repo:amd64" -m "$R/$repo:arm64" -t "$R/$repo:1" >/dev/null
  IDX=$(crane digest "$R/$repo:1")
  AMD=$(crane digest "$R/$repo:amd64")
  ARM=$(crane digest "$R/$repo:arm64")
}
predicate() { # BUILDER SOURCE FILE: an SLSA v1 predicate
  jq -n --arg b "$1" --arg s "git+$2@refs/tags/v1.0.0" '{
    buildDefinition: {buildType: "https://builder.example/build/v1",
      externalParameters: {ref: "refs/tags/v1.0.0"},
      resolvedDependencies: [{uri: $s, digest: {gitCommit: "0123456789abcdef0123456789abcdef01234567"}}]},
    runDetails: {builder: {id: $b}}}' >"$3"
}
# prepare REPO [PLATFORM]: pull (for PLATFORM when given) and fetch the signatures.
prepare() {
  if [[ -n ${2:-} ]]; then
    pc_pull "$1:1" --platform "$2" >/dev/null 2>&1 || echo "# pull of $1:1 for $2 failed"
  else
    pc_pull "$1:1" >/dev/null 2>&1 || echo "# pull of $1:1 failed"
  fi
  "$PC" fetch --plain-http "$R/$1:1" >>"$PC_WORK/logs/fetch.log" 2>&1 || true
}
# platform_is NAME DIGEST: the last record names DIGEST as the platform manifest.
platform_is() {
  local got
  got=$(journal_field "$LAST_ID" PORTCULLIS_PLATFORM_DIGEST || true)
  [[ $got == "$2" ]] && ok "$1: the record's platform manifest is $2" ||
    not_ok "$1: the record's platform manifest" "PORTCULLIS_PLATFORM_DIGEST=$got, expected $2"
}
signed_is() {
  local got
  got=$(journal_field "$LAST_ID" PORTCULLIS_SIGNED_DIGEST || true)
  [[ $got == "$2" ]] && ok "$1: the record's signed digest is $2" ||
    not_ok "$1: the record's signed digest" "PORTCULLIS_SIGNED_DIGEST=$got, expected $2"
}

write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "signed"
images = ["$R/sig/*"]
[[rule.signer]]
key = "$KEYS/release.pub"

[[rule]]
name = "attested"
images = ["$R/att/*"]
[rule.provenance]
builder_ids = ["$GOOD_BUILDER"]
source_uris = ["$GOOD_SOURCE"]
[[rule.provenance.signer]]
key = "$KEYS/release.pub"
EOF
check "policy check" "$PC" policy check "$PORTCULLIS_POLICY"

echo "# multi-arch images (crane), signed and attested (cosign)"
multiarch sig/index-signed index-signed
I_S=$IDX A_S=$AMD C_S=$ARM
cosign_do sign "sig/index-signed@$I_S"
multiarch sig/platform-signed platform-signed
I_P=$IDX A_P=$AMD C_P=$ARM
cosign_do sign "sig/platform-signed@$A_P"
multiarch sig/arm-signed arm-signed
I_R=$IDX A_R=$AMD C_R=$ARM
cosign_do sign "sig/arm-signed@$C_R"
multiarch att/index-attested index-attested
I_A=$IDX A_A=$AMD C_A=$ARM
predicate "$GOOD_BUILDER" "$GOOD_SOURCE" "$PC_WORK/good.json"
cosign_do attest "att/index-attested@$I_A" --type slsaprovenance1 --predicate "$PC_WORK/good.json"
multiarch att/index-other-builder index-other-builder
I_B=$IDX
predicate https://evil.example/builder "$GOOD_SOURCE" "$PC_WORK/evil.json"
cosign_do attest "att/index-other-builder@$I_B" --type slsaprovenance1 --predicate "$PC_WORK/evil.json"
# Provenance made for another index, copied under this index's .att tag.
multiarch att/other-index other-index
I_O=$IDX
multiarch att/elsewhere elsewhere
I_X=$IDX
cosign_do attest "att/elsewhere@$I_X" --type slsaprovenance1 --predicate "$PC_WORK/good.json"
crane copy "$R/att/elsewhere:sha256-${I_X#sha256:}.att" "$R/att/other-index:sha256-${I_O#sha256:}.att" >/dev/null
# A platform signature over the amd64 manifest, copied under the arm64 manifest's .sig tag.
crane copy "$R/sig/platform-signed:sha256-${A_P#sha256:}.sig" "$R/sig/platform-signed:sha256-${C_P#sha256:}.sig" >/dev/null

for pair in "index-signed $I_S" "platform-signed $I_P"; do
  set -- $pair
  n=$(crane manifest "$R/sig/$1:1" | jq -r '[.manifests[] | .platform.os + "/" + .platform.architecture] | join(",")')
  [[ $n == linux/amd64,linux/arm64 ]] && ok "crane index append: sig/$1:1 is an index of $n ($2)" ||
    not_ok "crane built sig/$1:1" "$n"
done
st=$(crane manifest "$R/att/index-attested:sha256-${I_A#sha256:}.att" | jq -r '.layers[0].annotations.predicateType')
[[ $st == https://slsa.dev/provenance/v1 ]] && ok "cosign attest wrote the index's .att ($st)" || not_ok "cosign attest on the index" "$st"

echo "# signature over the index digest"
prepare sig/index-signed
start_case multiarch-index-signed-this-platform-runs sig/index-signed:1 run allow
platform_is multiarch-index-signed-this-platform-runs "$A_S"
signed_is multiarch-index-signed-this-platform-runs "$I_S"
prepare sig/index-signed linux/arm64
START_OPTS=(--platform linux/arm64)
start_case multiarch-index-signed-other-platform-runs sig/index-signed:1 run allow
START_OPTS=()
platform_is multiarch-index-signed-other-platform-runs "$C_S"

echo "# signature over one platform manifest (amd64)"
prepare sig/platform-signed
start_case multiarch-platform-signed-this-platform-runs sig/platform-signed:1 run allow
platform_is multiarch-platform-signed-this-platform-runs "$A_P"
signed_is multiarch-platform-signed-this-platform-runs "$A_P"
prepare sig/platform-signed linux/arm64
"$PC" fetch --plain-http "$R/sig/platform-signed@$C_P" >>"$PC_WORK/logs/fetch.log" 2>&1 || true
START_OPTS=(--platform linux/arm64)
start_case multiarch-platform-signed-sibling-refused sig/platform-signed:1 refuse deny "$A_P"
START_OPTS=()
platform_is multiarch-platform-signed-sibling-refused "$C_P"
echo "#   $(grep -F 'portcullis: denied' <<<"$LAST_OUT" | head -n1)"

echo "# signature over the other platform's manifest (arm64) only"
prepare sig/arm-signed
"$PC" fetch --plain-http "$R/sig/arm-signed@$C_R" >>"$PC_WORK/logs/fetch.log" 2>&1 || true
start_case multiarch-arm-signed-this-platform-refused sig/arm-signed:1 refuse deny "$A_R"
prepare sig/arm-signed linux/arm64
START_OPTS=(--platform linux/arm64)
start_case multiarch-arm-signed-with-platform-arm64-runs sig/arm-signed:1 run allow
START_OPTS=()
platform_is multiarch-arm-signed-with-platform-arm64-runs "$C_R"
signed_is multiarch-arm-signed-with-platform-arm64-runs "$C_R"

echo "# provenance with subject = the index digest (provenance-only rule)"
prepare att/index-attested
start_case multiarch-index-attested-provenance-only-runs att/index-attested:1 run allow
signed_is multiarch-index-attested-provenance-only-runs "$I_A"
pb=$(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_BUILDER || true)
[[ $pb == "$GOOD_BUILDER" ]] && ok "multiarch-index-attested: the record names builder $pb" || not_ok "multiarch-index-attested builder" "$pb"
prepare att/index-attested linux/arm64
START_OPTS=(--platform linux/arm64)
start_case multiarch-index-attested-other-platform-runs att/index-attested:1 run allow
START_OPTS=()
platform_is multiarch-index-attested-other-platform-runs "$C_A"
prepare att/index-other-builder
start_case multiarch-index-attested-other-builder-refused att/index-other-builder:1 refuse deny \
  'builder id "https://evil.example/builder" is not one of the allowed builder_ids'
prepare att/other-index
start_case multiarch-provenance-of-another-index-refused att/other-index:1 refuse deny "${I_X#sha256:}"
echo "#   $(grep -F 'portcullis: denied' <<<"$LAST_OUT" | head -n1)"

summary
