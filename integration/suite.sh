#!/usr/bin/env bash
# The gate's integration suite, on real parts only: a private containerd with
# runc, the machine's journald, and Debian's docker-registry on loopback.
# Images are signed in cosign's registry format by sigstore-rs
# (integration/signer). Every case starts a container with
#   ctr run --runtime io.containerd.portcullis.v2
# and checks the client-visible outcome AND the journal record of that
# container ID.
#
# Run through integration/test-all.sh (which installs and builds first), or
# directly once setup.sh has run and the workspace is built.
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
RUNTIME=io.containerd.portcullis.v2
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

main_policy() {
  write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "warned"
images = ["$R/warn/*"]
mode = "warn"
[[rule.signer]]
key = "$KEYS/release.pub"

[[rule]]
name = "exempt"
images = ["$R/exempt/*"]
action = "allow"

[[rule]]
name = "blocked"
images = ["$R/blocked/**"]
action = "deny"

[[rule]]
name = "prov"
images = ["$R/prov/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]
source_uris = ["git+https://git.example/acme/*"]
[[rule.provenance.signer]]
key = "$KEYS/builder.pub"

[[rule]]
name = "provonly"
images = ["$R/provonly/*"]
[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]
source_uris = ["https://git.example/acme/app"]
[[rule.provenance.signer]]
key = "$KEYS/builder.pub"

[[rule]]
name = "provsame"
images = ["$R/provsame/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]
source_uris = ["https://git.example/acme/app"]

[[rule]]
name = "provwarn"
images = ["$R/provwarn/*"]
mode = "warn"
[[rule.signer]]
key = "$KEYS/release.pub"
[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]

[[rule]]
name = "keyless"
images = ["$R/keyless/*"]
trust_root = "$KL/trusted_root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject_regex = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v.+"
[rule.signer.extensions]
github_workflow_repository = "acme/app"

[[rule]]
name = "keyless-provenance"
images = ["$R/kprov/*"]
trust_root = "$KL/trusted_root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"
[rule.provenance]
builder_ids = ["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.*"]
source_uris = ["https://github.com/acme/app"]
source_refs = ["refs/tags/v*"]
[[rule.provenance.signer]]
issuer = "$KL_ISS"
subject_regex = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2[.].+"

[[rule]]
name = "keyless-att-provenance-only"
images = ["$R/kprovatt/*"]
trust_root = "$KL/trusted_root.json"
[rule.provenance]
builder_ids = ["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.*"]
source_uris = ["https://github.com/acme/app"]
[[rule.provenance.signer]]
issuer = "$KL_ISS"
subject_regex = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2[.].+"

[[rule]]
name = "keyless-private-ca"
images = ["$R/keylessca/good"]
trust_root = "$KL/no-ca-root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"
ca = "$KL/private-ca.pem"

[[rule]]
name = "keyless-wrong-private-ca"
images = ["$R/keylessca/otherca"]
trust_root = "$KL/no-ca-root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"
ca = "$KL/other-ca.pem"

[[rule]]
name = "keyless-other-root"
images = ["$R/keylessother/*"]
trust_root = "$KL/keylessother-good-1.root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"

[[rule]]
name = "demo"
images = ["$R/demo/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
[[rule.signer]]
key = "$KEYS/ed.pub"
[[rule.signer]]
key = "$KEYS/rsa.pub"
EOF
}

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

# set -e must not cut the cleanup short, nor a cleanup failure change the verdict.
trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR"

echo "# keys"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/other.key" --public "$KEYS/other.pub"
"$SIGN" keygen --scheme ed25519 --private "$KEYS/ed.key" --public "$KEYS/ed.pub"
"$SIGN" keygen --scheme rsa-2048 --private "$KEYS/rsa.key" --public "$KEYS/rsa.pub"

echo "# images"
declare -A DIGEST
for spec in demo/signed:v1 demo/unsigned:v1 demo/otherkey:v1 demo/replayed:v1 demo/ed25519:v1 \
  demo/rsa:v1 other/nomatch:v1 warn/unsigned:v1 exempt/debug:v1 blocked/team/app:v1 demo/corrupt:v1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done
DIGEST[demo/multi:v1]=$(pc_push_index demo/multi:v1 multi | tail -n 1)
DIGEST[demo/multiidx:v1]=$(pc_push_index demo/multiidx:v1 multiidx | tail -n 1)
PLATFORM_MULTI=$(pc_platform_digest demo/multi:v1)

echo "# signing (sigstore-rs, cosign registry format)"
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/demo/signed:v1"
"$SIGN" sign --plain-http --key "$KEYS/other.key" "$R/demo/otherkey:v1"
"$SIGN" sign --plain-http --key "$KEYS/ed.key" "$R/demo/ed25519:v1"
"$SIGN" sign --plain-http --key "$KEYS/rsa.key" "$R/demo/rsa:v1"
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/other/nomatch:v1"
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/demo/corrupt:v1"
# an index: one signed for this platform's manifest, one for the index digest
"$SIGN" sign --plain-http --key "$KEYS/release.key" --digest "$PLATFORM_MULTI" "$R/demo/multi:v1"
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/demo/multiidx:v1"
# replay: demo/signed's genuine signature copied to demo/replayed's signature tag
hex_signed=${DIGEST[demo/signed:v1]#sha256:}
hex_replayed=${DIGEST[demo/replayed:v1]#sha256:}
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
  "docker://$R/demo/signed:sha256-$hex_signed.sig" "docker://$R/demo/replayed:sha256-$hex_replayed.sig"

echo "# provenance: attestations made by securesystemslib (DSSE), attached in cosign's .att format"
ATT=$PC_WORK/att
mkdir -p "$ATT"
"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/builder.key" --public "$KEYS/builder.pub"
GOOD_BUILDER=https://builder.example/slsa/v1
GOOD_SOURCE=https://git.example/acme/app
for spec in prov/v1:1 prov/v02:1 prov/none:1 prov/wrongbuilder:1 prov/wrongsource:1 prov/othersubject:1 \
  prov/untrusted:1 prov/payloadtype:1 prov/malformed:1 provsame/v02:1 provwarn/none:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
  "$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/$spec" >/dev/null
done
attest() { # SPEC KEY [make_attestation options...]: attest SPEC's digest and attach it to SPEC
  local spec=$1 key=$2 out
  shift 2
  out=$ATT/${spec//[:\/]/-}.json
  python3 "$HERE/attest/make_attestation.py" --key "$key" --subject-digest "${DIGEST[$spec]}" \
    --subject-name "$R/${spec%%:*}" --out "$out" "$@"
  "$SIGN" attach-attestation --plain-http --envelope "$out" "$R/${spec%%:*}@${DIGEST[$spec]}" >/dev/null
}
attest prov/v1:1 "$KEYS/builder.key" --predicate-version v1 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE --source-ref refs/tags/v1.0.0
attest prov/v02:1 "$KEYS/builder.key" --predicate-version v0.2 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE
attest prov/wrongbuilder:1 "$KEYS/builder.key" --predicate-version v1 --builder-id https://evil.example/builder --source-uri $GOOD_SOURCE
attest prov/wrongsource:1 "$KEYS/builder.key" --predicate-version v1 --builder-id $GOOD_BUILDER --source-uri https://git.example/mallory/app
attest prov/untrusted:1 "$KEYS/other.key" --predicate-version v1 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE
attest prov/payloadtype:1 "$KEYS/builder.key" --predicate-version v1 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE --payload-type text/plain
attest prov/malformed:1 "$KEYS/builder.key" --predicate-version v1 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE --malform builder-id-number
attest provsame/v02:1 "$KEYS/release.key" --predicate-version v0.2 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE
# provenance alone: attested, never signed
for spec in provonly/good:1 provonly/wrongbuilder:1 provonly/signedonly:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/provonly/signedonly:1" >/dev/null
attest provonly/good:1 "$KEYS/builder.key" --predicate-version v1 --builder-id $GOOD_BUILDER --source-uri $GOOD_SOURCE
attest provonly/wrongbuilder:1 "$KEYS/builder.key" --predicate-version v1 --builder-id https://evil.example/builder --source-uri $GOOD_SOURCE
# prov/v1's genuine attestation attached to another image
"$SIGN" attach-attestation --plain-http --envelope "$ATT/prov-v1-1.json" "$R/prov/othersubject@${DIGEST[prov/othersubject:1]}" >/dev/null

echo "# keyless: Sigstore bundles from a local Fulcio/Rekor stand-in (@sigstore/mock + @sigstore/sign), attached as referrers"
KL=$PC_WORK/keyless
mkdir -p "$KL"
pc_start_standin "$KL"
KL_ID=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
KL_ISS=https://token.actions.githubusercontent.com
keyless_sign() { # SPEC SUBJECT ISSUER [sign-image options...]
  local spec=$1 subject=$2 issuer=$3 name
  shift 3
  name=${spec//[:\/]/-}
  pc_manifest_raw "$spec" >"$KL/$name.manifest"
  pc_node "$HERE/keyless/sign-image.mjs" --standin-url "$STANDIN_URL" --artifact "$KL/$name.manifest" \
    --digest "${DIGEST[$spec]}" --subject "$subject" --issuer "$issuer" --out "$KL/$name.bundle.json" \
    --trusted-root-out "$KL/$name.root.json" "$@" >/dev/null
  "$SIGN" attach-bundle --plain-http --bundle "$KL/$name.bundle.json" "$R/${spec%%:*}@${DIGEST[$spec]}" >/dev/null
}
for spec in keyless/good:1 keyless/wrongsubject:1 keyless/wrongissuer:1 keyless/expired:1 keyless/forged:1 \
  keyless/fork:1 keylessother/good:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done
keyless_sign keyless/good:1 "$KL_ID" "$KL_ISS" --extension repository=acme/app
keyless_sign keyless/wrongsubject:1 "https://github.com/acme/other/.github/workflows/release.yml@refs/tags/v1.0.0" "$KL_ISS" --extension repository=acme/app
keyless_sign keyless/wrongissuer:1 "$KL_ID" https://accounts.google.com --extension repository=acme/app
keyless_sign keyless/expired:1 "$KL_ID" "$KL_ISS" --extension repository=acme/app --cert-validity-offset -3600
keyless_sign keyless/forged:1 "$KL_ID" "$KL_ISS" --extension repository=acme/app --forge-log-entry index
keyless_sign keyless/fork:1 "$KL_ID" "$KL_ISS" --extension repository=acme/fork
keyless_sign keylessother/good:1 "$KL_ID" "$KL_ISS" --extension repository=acme/app --other-ca-root
for spec in keylessca/good:1 keylessca/otherca:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
  keyless_sign "$spec" "$KL_ID" "$KL_ISS"
done
# keyless provenance: a DSSE bundle by the builder's keyless identity (the SLSA generator's reusable workflow)
GEN_ID=https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0
for spec in kprov/good:1 kprov/wrongbuilder:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
  keyless_sign "$spec" "$KL_ID" "$KL_ISS"
  name=${spec//[:\/]/-}
  jq -n --arg d "${DIGEST[$spec]#sha256:}" --arg n "$R/${spec%%:*}" --arg b "$GEN_ID" '{
    _type: "https://in-toto.io/Statement/v0.1",
    subject: [{name: $n, digest: {sha256: $d}}],
    predicateType: "https://slsa.dev/provenance/v0.2",
    predicate: {
      builder: {id: $b},
      buildType: "https://github.com/slsa-framework/slsa-github-generator/container@v1",
      invocation: {configSource: {uri: "git+https://github.com/acme/app@refs/tags/v1.0.0",
        digest: {sha1: "0123456789abcdef0123456789abcdef01234567"}, entryPoint: ".github/workflows/release.yml"}},
      materials: [{uri: "git+https://github.com/acme/app@refs/tags/v1.0.0", digest: {sha1: "0123456789abcdef0123456789abcdef01234567"}}]
    }}' >"$KL/$name.statement.json"
done
kprov_attest() { # SPEC SIGNER_IDENTITY
  local name=${1//[:\/]/-}
  pc_node "$HERE/keyless/sign-attestation.mjs" --standin-url "$STANDIN_URL" --statement "$KL/$name.statement.json" \
    --subject "$2" --issuer "$KL_ISS" --out "$KL/$name.att.json" --trusted-root-out "$KL/$name.att-root.json" >/dev/null
  "$SIGN" attach-bundle --plain-http --bundle "$KL/$name.att.json" "$R/${1%%:*}@${DIGEST[$1]}" >/dev/null
}
kprov_attest kprov/good:1 "$GEN_ID"
kprov_attest kprov/wrongbuilder:1 "https://github.com/mallory/builder/.github/workflows/build.yml@refs/heads/main"
# keyless provenance in cosign's legacy .att image (what the SLSA container
# generator pushes): the stand-in's DSSE bundle laid out as an .att layer with
# certificate, chain and Rekor bundle annotations; the images are not signed.
for spec in kprovatt/good:1 kprovatt/otheridentity:1 kprovatt/otherbuilder:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
  name=${spec//[:\/]/-}
  builder=$GEN_ID
  [[ $spec == kprovatt/otherbuilder:1 ]] && builder=https://github.com/mallory/builder/.github/workflows/build.yml@refs/heads/main
  jq --arg d "${DIGEST[$spec]#sha256:}" --arg n "$R/${spec%%:*}" --arg b "$builder" \
    '.subject = [{name: $n, digest: {sha256: $d}}] | .predicate.builder.id = $b' "$KL/kprov-good-1.statement.json" >"$KL/$name.statement.json"
  signer=$GEN_ID
  [[ $spec == kprovatt/otheridentity:1 ]] && signer="https://github.com/mallory/builder/.github/workflows/build.yml@refs/heads/main"
  pc_node "$HERE/keyless/sign-attestation.mjs" --standin-url "$STANDIN_URL" --statement "$KL/$name.statement.json" \
    --subject "$signer" --issuer "$KL_ISS" --out "$KL/$name.att.json" --trusted-root-out "$KL/$name.att-root.json" >/dev/null
  bash "$HERE/keyless/legacy-att.sh" "$KL/$name.att.json" "$KL/trusted_root.json" "$KL/$name.legacy"
  python3 "$HERE/keyless/push-legacy-att.py" "$R" "${spec%%:*}" "sha256-${DIGEST[$spec]#sha256:}.att" \
    "$KL/$name.legacy/envelope.json" "$KL/$name.legacy/annotations.json" >/dev/null
done
ca_pem() { # ROOT.json -> the PEM of its first certificate authority
  jq -r '.certificateAuthorities[0].certChain.certificates[].rawBytes' "$1" |
    while read -r b; do printf -- '-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' "$(fold -w 64 <<<"$b")"; done
}
# bring-your-own PKI: a root that lists no CA at all, and the CA given to the signer
jq '.certificateAuthorities = []' "$KL/trusted_root.json" >"$KL/no-ca-root.json"
ca_pem "$KL/trusted_root.json" >"$KL/private-ca.pem"
ca_pem "$KL/keylessother-good-1.root.json" >"$KL/other-ca.pem"

echo "# pull into containerd, fetch signatures into the node cache"
for spec in "${!DIGEST[@]}"; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true
done

main_policy
"$PC" policy check "$PORTCULLIS_POLICY" >/dev/null && ok "policy check accepts the suite policy" ||
  not_ok "policy check accepts the suite policy" "$("$PC" policy check "$PORTCULLIS_POLICY")"

echo "# starts through io.containerd.portcullis.v2"
start_case signed-p256-runs demo/signed:v1 run allow
sv=$(journal_field "$LAST_ID" PORTCULLIS_SIGNER || true)
[[ $sv == key:$KEYS/release.pub* ]] && ok "journal names the signer" || not_ok "journal names the signer" "got '$sv'"
for f in PORTCULLIS_NAMESPACE PORTCULLIS_IMAGE_REF PORTCULLIS_IMAGE_DIGEST PORTCULLIS_RULE PORTCULLIS_MODE \
  PORTCULLIS_REASON PORTCULLIS_POLICY_DIGEST PORTCULLIS_DURATION_US MESSAGE_ID PRIORITY; do
  v=$(journal_field "$LAST_ID" "$f" || true)
  [[ -n $v ]] && ok "allow record has $f" || not_ok "allow record has $f"
done
[[ $(journal_field "$LAST_ID" PORTCULLIS_IMAGE_DIGEST) == "${DIGEST[demo/signed:v1]}" ]] &&
  ok "allow record has the started digest" || not_ok "allow record has the started digest"
start_case signed-ed25519-runs demo/ed25519:v1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_VERDICT_CACHE) == miss ]] && ok "first start verifies (verdict cache miss)" || not_ok "first start is a cache miss"
start_case signed-ed25519-runs-again demo/ed25519:v1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_VERDICT_CACHE) == hit ]] && ok "second start reuses the verdict (cache hit)" || not_ok "second start is a cache hit"
# replacing the Ed25519 key in the policy must not be masked by the cached pass
sed -i "s#$KEYS/ed.pub#$KEYS/other.pub#" "$PORTCULLIS_POLICY"
start_case policy-change-invalidates-cached-verdict demo/ed25519:v1 refuse deny "no signature verifies"
main_policy
# issue 15: the start reads the policy compiled once per text
# (policy::compiled); a changed text has its own entry, and damaged entries
# are never used: the parse answers and writes them again
compiled=("$PORTCULLIS_STATE_DIR"/policy-compiled/*)
((${#compiled[@]} >= 2)) && ok "each policy text has its own compiled entry (${#compiled[@]})" ||
  not_ok "each policy text has its own compiled entry" "${compiled[*]}"
for f in "${compiled[@]}"; do printf '{"format":1}\ngarbage\n' >"$f"; done
start_case damaged-compiled-policy-signed-runs demo/signed:v1 run allow
start_case damaged-compiled-policy-unsigned-refused demo/unsigned:v1 refuse deny "no signatures cached for ${DIGEST[demo/unsigned:v1]}"
grep -Elq '^\{"format":[0-9]+,"version"' "$PORTCULLIS_STATE_DIR"/policy-compiled/* &&
  ok "a damaged compiled entry is written again" || not_ok "a damaged compiled entry is written again"
# issue 15: a fetch under the policy in force decides ahead, so the first
# start of the image is a verdict-cache hit (it verifies nothing)
rm -rf "$PORTCULLIS_STATE_DIR/verdicts"
ahead=$("$PC" fetch --plain-http "$R/demo/rsa:v1" 2>&1 >/dev/null || true)
grep -qF 'decided ahead: a start of this digest will find its pass in the verdict cache (rule' <<<"$ahead" &&
  ok "fetch decides ahead under the policy in force" || not_ok "fetch decides ahead under the policy in force" "$ahead"
start_case signed-rsa-runs demo/rsa:v1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_VERDICT_CACHE) == hit ]] &&
  ok "first start after fetch verifies nothing (verdict cache hit)" ||
  not_ok "first start after fetch is a verdict cache hit" "$(journal_field "$LAST_ID" PORTCULLIS_VERDICT_CACHE || true)"
start_case index-platform-signature-runs demo/multi:v1 run allow
start_case index-digest-signature-runs demo/multiidx:v1 run allow
start_case unsigned-refused demo/unsigned:v1 refuse deny "no signatures cached for ${DIGEST[demo/unsigned:v1]}"
grep -qF "portcullis fetch $R/demo/unsigned@${DIGEST[demo/unsigned:v1]}" <<<"$LAST_OUT" &&
  ok "unsigned denial names the command that caches signatures" || not_ok "unsigned denial names the fetch command" "$LAST_OUT"
grep -qF "portcullis: denied $R/demo/unsigned:v1@${DIGEST[demo/unsigned:v1]}:" <<<"$LAST_OUT" &&
  ok "denial line has the form 'portcullis: denied <ref>@<digest>: <reason>'" || not_ok "denial line form" "$LAST_OUT"
[[ $(journal_field "$LAST_ID" PRIORITY) == 3 ]] && ok "denials are logged at priority err" || not_ok "deny priority"
start_case other-key-refused demo/otherkey:v1 refuse deny "no signature verifies with the rule's signer(s)"
start_case replayed-signature-refused demo/replayed:v1 refuse deny "replayed from another image"
start_case no-rule-matched-refused other/nomatch:v1 refuse deny "no rule matches $R/other/nomatch:v1"
start_case warn-mode-runs-unsigned warn/unsigned:v1 run warn
[[ $(journal_field "$LAST_ID" PORTCULLIS_MODE) == warn && $(journal_field "$LAST_ID" PRIORITY) == 4 ]] &&
  ok "warn record has mode warn, priority warning" || not_ok "warn record mode/priority"
start_case exemption-runs exempt/debug:v1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_RULE) == exempt ]] && ok "exemption recorded with its rule" || not_ok "exemption rule"
start_case deny-rule-refused blocked/team/app:v1 refuse deny 'refused by rule "blocked"'

echo "# SLSA provenance"
start_case provenance-v1-runs prov/v1:1 run allow
for f in PORTCULLIS_PROVENANCE_BUILDER PORTCULLIS_PROVENANCE_SOURCE PORTCULLIS_PROVENANCE_DIGEST PORTCULLIS_PROVENANCE_PREDICATE_TYPE; do
  v=$(journal_field "$LAST_ID" "$f" || true)
  [[ -n $v ]] && ok "provenance record has $f=$v" || not_ok "provenance record has $f"
done
[[ $(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_SIGNER) == key:$KEYS/builder.pub* ]] &&
  ok "provenance signed by the [[rule.provenance.signer]], not the image signer" || not_ok "provenance signer"
start_case provenance-v0.2-runs prov/v02:1 run allow
start_case provenance-rule-signer-runs provsame/v02:1 run allow
start_case no-provenance-refused prov/none:1 refuse deny "no provenance attestation cached"
start_case wrong-builder-refused prov/wrongbuilder:1 refuse deny 'builder id "https://evil.example/builder" is not one of the allowed builder_ids'
start_case wrong-source-refused prov/wrongsource:1 refuse deny "https://git.example/mallory/app"
start_case other-image-attestation-refused prov/othersubject:1 refuse deny "an attestation of another image never counts"
start_case untrusted-attestation-signer-refused prov/untrusted:1 refuse deny "DSSE signature(s) verifies with the signer(s)"
start_case wrong-payload-type-refused prov/payloadtype:1 refuse deny 'DSSE payload type is "text/plain"'
start_case malformed-predicate-refused prov/malformed:1 refuse deny "predicate.runDetails.builder.id"
start_case provenance-warn-mode-runs provwarn/none:1 run warn
start_case provenance-only-rule-runs-unsigned-attested-image provonly/good:1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_SIGNER) == key:$KEYS/builder.pub* && $(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_BUILDER) == "$GOOD_BUILDER" ]] &&
  ok "provenance-only pass records the attestation's signer and builder" ||
  not_ok "provenance-only pass record" "$(journal_field "$LAST_ID" PORTCULLIS_SIGNER) $(journal_field "$LAST_ID" PORTCULLIS_REASON)"
start_case provenance-only-rule-wrong-builder-refused provonly/wrongbuilder:1 refuse deny 'builder id "https://evil.example/builder" is not one of the allowed builder_ids'
start_case provenance-only-rule-signature-is-no-substitute provonly/signedonly:1 refuse deny "no provenance attestation cached"
j=$("$PC" provenance --json --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" "$R/prov/v1:1")
[[ $(jq -r .provenance.builder_id <<<"$j") == "$GOOD_BUILDER" && $(jq -r '.statement.subject[0].digest.sha256' <<<"$j") == "${DIGEST[prov/v1:1]#sha256:}" ]] &&
  ok "portcullis provenance --json prints the verified statement" || not_ok "portcullis provenance --json" "$j"
o=$("$PC" check --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" "$R/prov/v02:1")
grep -q "^provenance: builder $GOOD_BUILDER source $GOOD_SOURCE" <<<"$o" && ok "check shows the provenance it found" || not_ok "check shows provenance" "$o"
o=$("$PC" check --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" "$R/prov/wrongsource:1" || true)
grep -q "^reason: .*source" <<<"$o" && ok "check says why provenance fails" || not_ok "check says why provenance fails" "$o"

echo "# keyless Sigstore at the gate"
start_case keyless-identity-matches-runs keyless/good:1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_SIGNER_SUBJECT) == "$KL_ID" && $(journal_field "$LAST_ID" PORTCULLIS_SIGNER_ISSUER) == "$KL_ISS" ]] &&
  ok "keyless record has the certificate identity and issuer" || not_ok "keyless identity fields"
for f in PORTCULLIS_REKOR_LOG_ID PORTCULLIS_REKOR_LOG_INDEX PORTCULLIS_TIMESTAMP_SOURCE PORTCULLIS_SIGNED_AT; do
  v=$(journal_field "$LAST_ID" "$f" || true)
  [[ -n $v ]] && ok "keyless record has $f=$v" || not_ok "keyless record has $f"
done
start_case keyless-wrong-subject-refused keyless/wrongsubject:1 refuse deny "does not match the signer's subject"
start_case keyless-wrong-issuer-refused keyless/wrongissuer:1 refuse deny "does not match the signer's issuer"
start_case keyless-cert-expired-at-log-time-refused keyless/expired:1 refuse deny "CertExpired"
start_case keyless-forged-log-entry-refused keyless/forged:1 refuse deny "SET verification failed"
start_case keyless-extension-mismatch-refused keyless/fork:1 refuse deny 'certificate extension github_workflow_repository is "acme/fork"'
start_case keyless-trust-root-without-ca-refused keylessother/good:1 refuse deny "certificate chain validation failed"
start_case keyless-private-ca-runs keylessca/good:1 run allow
start_case keyless-provenance-bundle-runs kprov/good:1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_SIGNER) == "keyless:$GEN_ID (issuer $KL_ISS)" ]] &&
  ok "provenance signed by the builder's keyless identity is recorded" || not_ok "keyless provenance signer" "$(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_SIGNER)"
start_case keyless-provenance-wrong-builder-identity-refused kprov/wrongbuilder:1 refuse deny "does not match the signer's subject"
start_case keyless-wrong-private-ca-refused keylessca/otherca:1 refuse deny "certificate chain validation failed"
start_case keyless-legacy-att-provenance-only-runs kprovatt/good:1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_SIGNER) == "keyless:$GEN_ID (issuer $KL_ISS)" ]] &&
  ok "keyless .att: provenance signer is the generator's identity" || not_ok "keyless .att provenance signer" "$(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_SIGNER)"
start_case keyless-legacy-att-other-identity-refused kprovatt/otheridentity:1 refuse deny "does not match the signer's subject"
start_case keyless-legacy-att-other-builder-refused kprovatt/otherbuilder:1 refuse deny "is not one of the allowed builder_ids"
j=$("$PC" provenance --json --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" "$R/kprovatt/good:1" 2>&1) || true
[[ $(jq -r .provenance.builder_id <<<"$j" 2>/dev/null) == "$GEN_ID" && $(jq -r .signer <<<"$j" 2>/dev/null) == "keyless:$GEN_ID (issuer $KL_ISS)" ]] &&
  ok "portcullis provenance verifies the keyless .att (no 'not a usable public key')" || not_ok "portcullis provenance on a keyless .att" "${j:0:1500}"
kill "$STANDIN_PID" 2>/dev/null || true

echo "# fail closed"
cache_file=$PORTCULLIS_STATE_DIR/cache/sha256/${DIGEST[demo/corrupt:v1]#sha256:}.json
printf '{"format":1,' >"$cache_file"
start_case corrupt-cache-refused demo/corrupt:v1 refuse deny "is corrupt"
cp "$PORTCULLIS_STATE_DIR/cache/sha256/$hex_signed.json" "$cache_file"
start_case swapped-cache-file-refused demo/corrupt:v1 refuse deny "swapped for another digest"
"$PC" fetch --plain-http "$R/demo/corrupt:v1" >/dev/null 2>&1
start_case refetch-repairs-cache demo/corrupt:v1 run allow

cp "$PORTCULLIS_POLICY" "$PC_WORK/policy.good"
printf 'mode = "enforce"\nsurprise = true\n' >"$PORTCULLIS_POLICY"
start_case invalid-policy-refuses-signed demo/signed:v1 refuse deny "unknown key \`surprise\`"
rm -f "$PORTCULLIS_POLICY"
start_case missing-policy-refuses demo/signed:v1 refuse deny "cannot read policy"
cp "$PC_WORK/policy.good" "$PORTCULLIS_POLICY"
sed -i "s#$KEYS/release.pub#$KEYS/missing.pub#" "$PORTCULLIS_POLICY"
start_case missing-key-refuses demo/signed:v1 refuse deny "cannot read signer key"
main_policy

echo "# rootfs lineage: the container must run the verified image's layers"
id=$(new_id lineage)
pc_ctr containers create --runtime "$RUNTIME" "$R/demo/signed:v1" "$id" /bin/true >/dev/null
pc_ctr snapshots rm "$id" >/dev/null
pc_ctr snapshots prepare "$id" >/dev/null # an empty rootfs under the same key
if out=$(pc_ctr tasks start "$id" 2>&1); then
  not_ok "swapped snapshot refused" "the task started"
elif grep -qF "does not descend from the verified image" <<<"$out"; then
  ok "swapped snapshot refused (does not descend from the verified image)"
else
  not_ok "swapped snapshot refused" "$out"
fi
[[ $(journal_field "$id" PORTCULLIS_VERDICT) == deny ]] && ok "swapped snapshot denial recorded" || not_ok "swapped snapshot denial recorded"
pc_ctr containers rm "$id" >/dev/null 2>&1 || true
rootfs=$PC_WORK/bare-rootfs
mkdir -p "$rootfs/bin" && cp /bin/busybox "$rootfs/bin/" && ln -sf busybox "$rootfs/bin/true"
id=$(new_id rootfs)
if out=$(pc_ctr run --rm --runtime "$RUNTIME" --rootfs "$rootfs" "$id" /bin/true 2>&1); then
  not_ok "ctr run --rootfs refused" "it ran"
elif grep -qF "bare rootfs" <<<"$out"; then
  ok "ctr run --rootfs refused (no image to verify)"
else
  not_ok "ctr run --rootfs refused" "$out"
fi

echo "# the CLI gives the shim's decision"
check_case() {
  local name=$1 image=$2 want_rc=$3 rc
  set +e
  "$PC" check --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" "$R/$image" >/dev/null 2>&1
  rc=$?
  set -e
  [[ $rc -eq $want_rc ]] && ok "check $name exits $want_rc" || not_ok "check $name exits $want_rc" "got $rc"
}
check_case signed demo/signed:v1 0
check_case unsigned demo/unsigned:v1 1
check_case replayed demo/replayed:v1 1
check_case warn warn/unsigned:v1 0
check_case index demo/multi:v1 0
j=$("$PC" check --json --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" "$R/demo/otherkey:v1" || true)
[[ $(jq -r .verdict <<<"$j") == deny && $(jq -r .rule <<<"$j") == demo ]] &&
  ok "check --json reports verdict and rule" || not_ok "check --json" "$j"

echo "# audit reads the journal back"
a=$("$PC" audit --json --container "$LAST_ID")
[[ $(jq 'length' <<<"$a") -ge 1 ]] && ok "audit --container finds the record" || not_ok "audit --container" "$a"
a=$("$PC" audit --json --verdict deny --since -1h)
[[ $(jq '[.[] | select(.verdict != "deny")] | length' <<<"$a") -eq 0 && $(jq 'length' <<<"$a") -ge 5 ]] &&
  ok "audit --verdict deny returns only denials ($(jq length <<<"$a"))" || not_ok "audit --verdict deny" "$a"

echo "# passthrough and no resident wrapper"
# The wrapper's -v must exit 0 and print what the runc shim prints (its own
# error, "cannot run the inner shim containerd-shim-runc-v2", must not pass).
v_rc=0
v=$(PATH="$PC_BIN_DIR:$PATH" containerd-shim-portcullis-v2 -v 2>&1) || v_rc=$?
v_real=$(containerd-shim-runc-v2 -v 2>&1) || v_real="containerd-shim-runc-v2 -v failed: $v_real"
v_version=$(grep -m 1 -o "Version:.*" <<<"$v" || true)
((v_rc == 0)) && [[ $(head -n 1 <<<"$v") == "$(head -n 1 <<<"$v_real")" && -n $v_version &&
  $v_version == "$(grep -m 1 -o "Version:.*" <<<"$v_real" || true)" ]] &&
  ok "-v passes through to the runc shim ($(head -n 1 <<<"$v") $v_version)" ||
  not_ok "-v passthrough" "exit $v_rc: $v" "containerd-shim-runc-v2 -v: $v_real"
id=$(new_id detached)
pc_ctr run -d --runtime "$RUNTIME" "$R/demo/signed:v1" "$id" /bin/busybox sleep 30 >/dev/null
sleep 0.5
# The wrapper's own command line (argv[0] is the binary), not a compiler
# building it somewhere else on the machine.
wrapper_re='^([^ ]*/)?containerd-shim-portcullis-v2( |$)'
if pgrep -r R,S,D -f "$wrapper_re" >/dev/null; then
  not_ok "no wrapper process stays behind" "$(pgrep -af "$wrapper_re")"
else
  ok "no wrapper process stays behind while the task runs"
fi
pgrep -af "containerd-shim-runc-v2.*$id" >/dev/null && ok "the runc shim serves the task" || not_ok "runc shim serves the task"
pc_ctr tasks kill -s KILL "$id" >/dev/null 2>&1 || true
for _ in $(seq 1 50); do
  grep -qx "$id" <<<"$(pc_ctr tasks ls -q 2>/dev/null)" || break
  pc_ctr tasks delete "$id" >/dev/null 2>&1 || true
  sleep 0.1
done
pc_ctr containers rm "$id" >/dev/null 2>&1 && ok "delete passes through (task and container removed)" ||
  not_ok "delete passthrough"

# journald away (spool and replay) is in faults.sh.

echo "# containerd unreachable: refused within the deadline"
out=$(PORTCULLIS_CONTAINERD_TIMEOUT_MS=500 PATH="$PC_BIN_DIR:$PATH" \
  containerd-shim-portcullis-v2 -namespace "$PC_NS" -address "$PC_WORK/nonexistent.sock" \
  -publish-binary /usr/bin/containerd -id unreachable-1 start 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 ]] && grep -qF "unreachable" <<<"$out" && ok "unreachable containerd refuses: ${out:0:120}" ||
  not_ok "unreachable containerd refuses" "rc=$rc $out"

summary
