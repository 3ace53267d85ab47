#!/usr/bin/env bash
# Issue 14 item 3 (key-based part): signatures and SLSA provenance made by the
# real cosign (v3, installed by integration/tools.sh), on real parts: Debian's
# docker-registry on loopback, containerd 1.6 with runc, journald.
#
# Forms produced by `cosign` with a key made by `cosign generate-key-pair`,
# offline (no Rekor, no TSA, no TUF):
#   sig-legacy   cosign sign, the `sha256-<hex>.sig` image (simple signing)
#                  --new-bundle-format=false --use-signing-config=false --tlog-upload=false
#   sig-bundle   cosign sign, a Sigstore bundle v0.3 in an OCI artifact, found
#                through the referrers tag `sha256-<hex>`
#                  --signing-config (a config without any service)
#   att-legacy   cosign attest, the `sha256-<hex>.att` image (one DSSE layer)
#   att-bundle   cosign attest, a DSSE Sigstore bundle v0.3 (referrers tag)
# each attestation as --type slsaprovenance1 (SLSA v1) and --type
# slsaprovenance (SLSA v0.2) from a predicate file.
#
# Signatures are checked by a rule with the cosign key as [[rule.signer]];
# attestations by a provenance-only rule ([rule.provenance] with its own
# [[rule.provenance.signer]], no [[rule.signer]]). The legacy forms start
# under enforce and are refused with another key; each attestation is also
# refused with another builder and another source. `portcullis check`,
# `portcullis provenance` and `bundle export` / `bundle import` (into an
# empty state directory, then `check` there) run on each form, and the
# evidence pack re-verifies the forms that ran from the pack alone.
#
# The bundle forms made offline carry no transparency-log entry and no RFC
# 3161 timestamp. sigstore-verify 0.15.1 refuses them ("v0.3 bundle must
# have an inclusion proof"; sigstore-bundle 0.15.1's structural check wants
# a tlog entry or a timestamp). For a key signer that does not require the
# log (require_tlog = false, the default, as for the legacy forms) Portcullis
# checks the bundle's DSSE envelope with the key and binds its statement's
# subject (verify::signatures, RuleSigners::key_bundle_without_log): they
# start under enforce, and are refused with another key or builder. With
# require_tlog = true they are refused for the crate's reason. A timestamp
# would need a TSA cosign can reach: the keyless stand-in's TSA takes JSON
# requests only, cosign sends DER (HTTP 400); its Rekor answers in a format
# cosign v3.1.3 cannot read (it panics in tle.GenerateTransparencyLogEntry).
#
# Not covered here, said in the output: the OCI 1.1 referrers API (the
# `registry` of go-containerregistry v0.22.1 does not enable it; Debian's
# registry 2.8 has none), keyless signing.
#
# Ends with "N passed, M failed".
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

PC="$PC_BIN_DIR/portcullis"
TOOLS=${PC_TOOLS:-/opt/portcullis-tools}
COSIGN=$TOOLS/bin/cosign
GGCR_REGISTRY=$TOOLS/bin/registry
for b in "$COSIGN" "$GGCR_REGISTRY"; do
  [[ -x $b ]] || { echo "cosign.sh: $b missing: run integration/tools.sh" >&2; exit 1; }
done
KEYS=$PC_WORK/keys
TRUST=$PC_REPO_ROOT/tests/data/trust-roots/production/trusted_root.json
GOOD_BUILDER=https://builder.example/slsa/v1
GOOD_SOURCE=https://git.example/acme/app
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR
# cosign's key password, and its TUF cache kept under PC_WORK.
export COSIGN_PASSWORD=portcullis-it TUF_ROOT=$PC_WORK/tuf

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

GGCR_PID=
stop_ggcr() { [[ -z $GGCR_PID ]] || kill "$GGCR_PID" 2>/dev/null; }
trap 'pc_exit_trap $? stop_ggcr' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR" "$TUF_ROOT"
COSIGN_VERSION=$("$COSIGN" version 2>/dev/null | awk '/^GitVersion:/ {print $2}')
echo "# tools: cosign $COSIGN_VERSION ($COSIGN), containerd $(containerd --version | awk '{print $3}'), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')"

echo "# keys: cosign generate-key-pair"
(cd "$KEYS" && "$COSIGN" generate-key-pair --output-key-prefix release >/dev/null 2>&1 &&
  "$COSIGN" generate-key-pair --output-key-prefix other >/dev/null 2>&1)
[[ -s $KEYS/release.key && -s $KEYS/release.pub && -s $KEYS/other.pub ]] &&
  ok "cosign generate-key-pair wrote release and other key pairs" || not_ok "cosign generate-key-pair" "$(ls -l "$KEYS")"

# A signing config naming no Fulcio, Rekor or TSA: cosign v3 signs the new
# bundle format offline with it (its --tlog-upload=false is refused with
# --use-signing-config, which defaults to true and reaches for TUF).
SC=$PC_WORK/signing-config.json
"$COSIGN" signing-config create --out "$SC" >/dev/null 2>&1
LEGACY=(--new-bundle-format=false --use-signing-config=false --tlog-upload=false)
BUNDLE=(--signing-config "$SC")

declare -A DIGEST
cosign_do() { # FORM VERB KEY SPEC [cosign options...]: run `cosign VERB` on SPEC's digest, in FORM
  local form=$1 verb=$2 key=$3 spec=$4 log flags
  shift 4
  if [[ $form == legacy ]]; then flags=("${LEGACY[@]}"); else flags=("${BUNDLE[@]}"); fi
  log=$PC_WORK/logs/cosign-${spec//[:\/]/-}.log
  if ! timeout 120 "$COSIGN" "$verb" --key "$KEYS/$key.key" --allow-http-registry -y "${flags[@]}" "$@" \
    "$R/${spec%%:*}@${DIGEST[$spec]}" >"$log" 2>&1; then
    not_ok "cosign $verb ($form) $spec" "$(tail -n 5 "$log")"
    return 0
  fi
}
predicate() { # VERSION BUILDER SOURCE FILE: an SLSA predicate (v1 or v0.2) naming BUILDER and SOURCE
  local commit=0123456789abcdef0123456789abcdef01234567
  if [[ $1 == v1 ]]; then
    jq -n --arg b "$2" --arg s "git+$3@refs/tags/v1.0.0" --arg c "$commit" '{
      buildDefinition: {buildType: "https://builder.example/build/v1",
        externalParameters: {ref: "refs/tags/v1.0.0"},
        resolvedDependencies: [{uri: $s, digest: {gitCommit: $c}}]},
      runDetails: {builder: {id: $b}}}' >"$4"
  else
    jq -n --arg b "$2" --arg s "git+$3@refs/tags/v1.0.0" --arg c "$commit" '{
      builder: {id: $b}, buildType: "https://builder.example/build/v1",
      invocation: {configSource: {uri: $s, digest: {sha1: $c}, entryPoint: "build.yml"}},
      materials: [{uri: $s, digest: {sha1: $c}}]}' >"$4"
  fi
}

echo "# images"
SPECS=(sig/legacy:1 sig/legacy-otherkey:1 sig/bundle:1 sig/bundle-otherkey:1)
for v in v1 v02; do
  for case in good builder source otherkey; do SPECS+=("att/legacy-$v-$case:1"); done
  for case in good builder otherkey; do SPECS+=("att/bundle-$v-$case:1"); done
done
for spec in "${SPECS[@]}"; do
  DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
done

echo "# cosign sign --key: legacy .sig and new bundle"
cosign_do legacy sign release sig/legacy:1
cosign_do legacy sign other sig/legacy-otherkey:1
cosign_do bundle sign release sig/bundle:1
cosign_do bundle sign other sig/bundle-otherkey:1

echo "# cosign attest --key --type slsaprovenance1 / slsaprovenance: legacy .att and new bundle"
PRED=$PC_WORK/predicates
mkdir -p "$PRED"
for form in legacy bundle; do
  for v in v1 v02; do
    if [[ $v == v1 ]]; then type=slsaprovenance1; else type=slsaprovenance; fi
    for case in good builder source otherkey; do
      [[ $form == bundle && $case == source ]] && continue
      builder=$GOOD_BUILDER source=$GOOD_SOURCE key=release
      case $case in
      builder) builder=https://evil.example/builder ;;
      source) source=https://git.example/mallory/app ;;
      otherkey) key=other ;;
      esac
      predicate "$v" "$builder" "$source" "$PRED/$form-$v-$case.json"
      cosign_do "$form" attest "$key" "att/$form-$v-$case:1" --type "$type" --predicate "$PRED/$form-$v-$case.json"
    done
  done
done

echo "# what cosign wrote to the registry"
hex=${DIGEST[sig/legacy:1]#sha256:}
mt=$(skopeo inspect --raw --tls-verify=false "docker://$R/sig/legacy:sha256-$hex.sig" | jq -r '.layers[0].mediaType')
[[ $mt == application/vnd.dev.cosign.simplesigning.v1+json ]] &&
  ok "legacy sign: sha256-<hex>.sig holds a $mt layer" || not_ok "legacy sign wrote a .sig image" "$mt"
hex=${DIGEST[att/legacy-v1-good:1]#sha256:}
mt=$(skopeo inspect --raw --tls-verify=false "docker://$R/att/legacy-v1-good:sha256-$hex.att" |
  jq -r '.layers[0].mediaType + " " + .layers[0].annotations.predicateType')
[[ $mt == "application/vnd.dsse.envelope.v1+json https://slsa.dev/provenance/v1" ]] &&
  ok "legacy attest: sha256-<hex>.att holds a DSSE layer ($mt)" || not_ok "legacy attest wrote an .att image" "$mt"
for spec in sig/bundle:1 att/bundle-v02-good:1; do
  hex=${DIGEST[$spec]#sha256:}
  at=$(skopeo inspect --raw --tls-verify=false "docker://$R/${spec%%:*}:sha256-$hex" | jq -r '[.manifests[].artifactType] | unique | join(",")')
  [[ $at == application/vnd.dev.sigstore.bundle.v0.3+json ]] &&
    ok "bundle form ($spec): the referrers tag sha256-<hex> indexes a $at artifact" ||
    not_ok "bundle form ($spec) wrote a referrers-tag index" "$at"
done
bundle_layer() { # SPEC: the bundle JSON of the first artifact the referrers tag of SPEC indexes
  local spec=$1 m l
  m=$(skopeo inspect --raw --tls-verify=false "docker://$R/${spec%%:*}:sha256-${DIGEST[$spec]#sha256:}" | jq -r '.manifests[0].digest')
  l=$(skopeo inspect --raw --tls-verify=false "docker://$R/${spec%%:*}@$m" |
    jq -r '[.layers[] | select(.mediaType == "application/vnd.dev.sigstore.bundle.v0.3+json")][0].digest')
  curl -fsS "http://$R/v2/${spec%%:*}/blobs/$l"
}
tl=$(bundle_layer sig/bundle:1 | jq -c '{tlogEntries: (.verificationMaterial.tlogEntries // [] | length), rfc3161Timestamps: (.verificationMaterial.timestampVerificationData.rfc3161Timestamps // [] | length), content: (if .dsseEnvelope then "dsseEnvelope" else "messageSignature" end)}' 2>&1) || true
echo "# the key-signed bundle of sig/bundle:1: $tl (offline: no Rekor, no TSA)"

echo "# the OCI 1.1 referrers API"
port=5329
"$GGCR_REGISTRY" -port "$port" >"$PC_WORK/logs/ggcr-registry.log" 2>&1 &
GGCR_PID=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/x/referrers/${DIGEST[sig/bundle:1]}")
kill "$GGCR_PID" 2>/dev/null || true
GGCR_PID=
echo "# NOT COVERED: go-containerregistry's registry v0.22.1 answers GET /v2/<repo>/referrers/<digest> with HTTP $code (its cmd/registry does not enable WithReferrersSupport) and Debian's registry 2.8 has no referrers API: cosign wrote the bundles through the referrers tag fallback, and only that path is tested here"

echo "# pull into containerd, portcullis fetch"
for spec in "${SPECS[@]}"; do
  pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >"$PC_WORK/logs/fetch-${spec//[:\/]/-}.log" 2>&1 ||
    not_ok "portcullis fetch $spec" "$(tail -n 3 "$PC_WORK/logs/fetch-${spec//[:\/]/-}.log")"
done

write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "cosign-signed"
images = ["$R/sig/*"]
trust_root = "$TRUST"
[[rule.signer]]
key = "$KEYS/release.pub"

[[rule]]
name = "cosign-attested"
images = ["$R/att/*"]
trust_root = "$TRUST"
[rule.provenance]
builder_ids = ["$GOOD_BUILDER"]
source_uris = ["$GOOD_SOURCE"]
[[rule.provenance.signer]]
key = "$KEYS/release.pub"
EOF
check "policy check accepts a provenance-only rule" "$PC" policy check "$PORTCULLIS_POLICY"

echo "# legacy forms: starts under enforce (io.containerd.portcullis.v2, containerd 1.6)"
start_case cosign-sign-legacy-right-key-runs sig/legacy:1 run allow
[[ $(journal_field "$LAST_ID" PORTCULLIS_SIGNER) == key:$KEYS/release.pub* ]] &&
  ok "cosign-sign-legacy: the record names the cosign key" || not_ok "cosign-sign-legacy signer" "$(journal_field "$LAST_ID" PORTCULLIS_SIGNER)"
start_case cosign-sign-legacy-other-key-refused sig/legacy-otherkey:1 refuse deny "no signature verifies with the rule's signer(s)"
for v in v1 v02; do
  start_case "cosign-attest-legacy-$v-right-key-builder-source-runs" "att/legacy-$v-good:1" run allow
  pb=$(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_BUILDER || true)
  pt=$(journal_field "$LAST_ID" PORTCULLIS_PROVENANCE_PREDICATE_TYPE || true)
  want=https://slsa.dev/provenance/v1
  [[ $v == v02 ]] && want=https://slsa.dev/provenance/v0.2
  [[ $pb == "$GOOD_BUILDER" && $pt == "$want" ]] &&
    ok "cosign-attest-legacy-$v: the record names builder $pb and $pt" ||
    not_ok "cosign-attest-legacy-$v record" "builder=$pb type=$pt"
  start_case "cosign-attest-legacy-$v-other-builder-refused" "att/legacy-$v-builder:1" refuse deny \
    'builder id "https://evil.example/builder" is not one of the allowed builder_ids'
  start_case "cosign-attest-legacy-$v-other-source-refused" "att/legacy-$v-source:1" refuse deny "https://git.example/mallory/app"
  start_case "cosign-attest-legacy-$v-other-key-refused" "att/legacy-$v-otherkey:1" refuse deny "DSSE signature(s) verifies with the signer(s)"
done

echo "# legacy forms: portcullis check and provenance"
check_rc() { # NAME WANT_RC CMD...
  local name=$1 want=$2 rc=0 out
  shift 2
  out=$("$@" 2>&1) || rc=$?
  [[ $rc -eq $want ]] && ok "$name (exit $rc)" || not_ok "$name" "exit $rc, expected $want" "${out:0:1500}"
  LAST_OUT=$out
}
CA=(--address "$PC_CONTAINERD_SOCK" -n "$PC_NS")
check_rc "check sig/legacy: allow" 0 "$PC" check "${CA[@]}" "$R/sig/legacy:1"
check_rc "check sig/legacy-otherkey: deny" 1 "$PC" check "${CA[@]}" "$R/sig/legacy-otherkey:1"
for v in v1 v02; do
  check_rc "check att/legacy-$v-good: allow" 0 "$PC" check "${CA[@]}" "$R/att/legacy-$v-good:1"
  check_rc "check att/legacy-$v-builder: deny" 1 "$PC" check "${CA[@]}" "$R/att/legacy-$v-builder:1"
  j=$("$PC" provenance --json "${CA[@]}" "$R/att/legacy-$v-good:1" 2>&1) || true
  [[ $(jq -r .provenance.builder_id <<<"$j" 2>/dev/null) == "$GOOD_BUILDER" &&
    $(jq -r .provenance.source_uri <<<"$j" 2>/dev/null) == "$GOOD_SOURCE" &&
    $(jq -r '.statement.subject[0].digest.sha256' <<<"$j" 2>/dev/null) == "${DIGEST[att/legacy-$v-good:1]#sha256:}" ]] &&
    ok "provenance att/legacy-$v-good: the verified statement, builder and source" ||
    not_ok "provenance att/legacy-$v-good" "${j:0:1500}"
  check_rc "provenance att/legacy-$v-source: refused" 1 "$PC" provenance "${CA[@]}" "$R/att/legacy-$v-source:1"
  check_rc "provenance att/legacy-$v-otherkey: refused" 1 "$PC" provenance "${CA[@]}" "$R/att/legacy-$v-otherkey:1"
done

echo "# legacy forms: bundle export from this node, import into an empty state directory, check there"
B=$PC_WORK/state-b
for spec in sig/legacy:1 att/legacy-v1-good:1 att/legacy-v02-good:1; do
  name=${spec//[:\/]/-}
  rm -rf "$B" && mkdir -p "$B"
  out=$("$PC" bundle export --json -o "$PC_WORK/$name.bundle" "${CA[@]}" "$R/$spec" 2>"$PC_WORK/logs/export-$name.err") || true
  kinds=$(jq -r '[.items[].kind] | unique | join(",")' <<<"$out" 2>/dev/null || true)
  [[ -s $PC_WORK/$name.bundle && -n $kinds ]] && ok "bundle export $spec ($kinds)" ||
    not_ok "bundle export $spec" "$out" "$(cat "$PC_WORK/logs/export-$name.err")"
  out=$("$PC" bundle import --json --state-dir "$B" "$PC_WORK/$name.bundle" 2>&1) || true
  [[ $(jq .stored <<<"$out" 2>/dev/null) -ge 1 && $(jq .refused <<<"$out" 2>/dev/null) == 0 ]] &&
    ok "bundle import $spec: $(jq .stored <<<"$out") stored, 0 refused" || not_ok "bundle import $spec" "${out:0:1500}"
  check_rc "check $spec from the imported state: allow" 0 "$PC" check --state-dir "$B" "${CA[@]}" "$R/$spec"
done
# An import is verified against the policy: the other key's signature and an
# attestation of another builder are refused, not stored.
for spec in sig/legacy-otherkey:1 att/legacy-v1-builder:1; do
  name=${spec//[:\/]/-}
  rm -rf "$B" && mkdir -p "$B"
  "$PC" bundle export -o "$PC_WORK/$name.bundle" "${CA[@]}" "$R/$spec" >/dev/null 2>&1 || true
  out=$("$PC" bundle import --json --state-dir "$B" "$PC_WORK/$name.bundle" 2>&1) && rc=0 || rc=$?
  [[ $rc -eq 1 && $(jq .stored <<<"$out" 2>/dev/null) == 0 ]] &&
    ok "bundle import $spec: refused (exit 1, nothing stored)" || not_ok "bundle import $spec refused" "exit $rc" "${out:0:1500}"
done

echo "# new bundle format (v0.3) signed with a key offline: no tlog entry, no RFC 3161 timestamp. sigstore-verify 0.15.1 refuses such a bundle; for a key signer that does not require the log (require_tlog = false, the default) Portcullis checks its DSSE envelope with the key, as it checks a legacy .att, and binds the statement's subject"
start_case cosign-sign-bundle-right-key-runs sig/bundle:1 run allow
start_case cosign-sign-bundle-other-key-refused sig/bundle-otherkey:1 refuse deny "without a log entry"
check_rc "check sig/bundle: allow" 0 "$PC" check "${CA[@]}" "$R/sig/bundle:1"
check_rc "check sig/bundle-otherkey: deny" 1 "$PC" check "${CA[@]}" "$R/sig/bundle-otherkey:1"
for v in v1 v02; do
  start_case "cosign-attest-bundle-$v-right-key-builder-source-runs" "att/bundle-$v-good:1" run allow
  start_case "cosign-attest-bundle-$v-other-builder-refused" "att/bundle-$v-builder:1" refuse deny \
    'builder id "https://evil.example/builder" is not one of the allowed builder_ids'
  start_case "cosign-attest-bundle-$v-other-key-refused" "att/bundle-$v-otherkey:1" refuse deny "without a log entry"
  j=$("$PC" provenance --json "${CA[@]}" "$R/att/bundle-$v-good:1" 2>&1) || true
  [[ $(jq -r .provenance.builder_id <<<"$j" 2>/dev/null) == "$GOOD_BUILDER" &&
    $(jq -r .provenance.source_uri <<<"$j" 2>/dev/null) == "$GOOD_SOURCE" &&
    $(jq -r '.statement.subject[0].digest.sha256' <<<"$j" 2>/dev/null) == "${DIGEST[att/bundle-$v-good:1]#sha256:}" ]] &&
    ok "provenance att/bundle-$v-good: the verified statement, builder and source" ||
    not_ok "provenance att/bundle-$v-good" "${j:0:1500}"
  check_rc "provenance att/bundle-$v-otherkey: refused" 1 "$PC" provenance "${CA[@]}" "$R/att/bundle-$v-otherkey:1"
done
for spec in sig/bundle:1 att/bundle-v1-good:1 att/bundle-v02-good:1; do
  name=${spec//[:\/]/-}
  rm -rf "$B" && mkdir -p "$B"
  out=$("$PC" bundle export --json -o "$PC_WORK/$name.bundle" "${CA[@]}" "$R/$spec" 2>/dev/null) || true
  [[ $(jq -r '[.items[].kind] | unique | join(",")' <<<"$out" 2>/dev/null) == sigstore-bundle ]] &&
    ok "bundle export $spec (sigstore-bundle)" || not_ok "bundle export $spec" "${out:0:1000}"
  out=$("$PC" bundle import --json --state-dir "$B" "$PC_WORK/$name.bundle" 2>&1) || true
  [[ $(jq .stored <<<"$out" 2>/dev/null) -ge 1 && $(jq .refused <<<"$out" 2>/dev/null) == 0 ]] &&
    ok "bundle import $spec: $(jq .stored <<<"$out") stored, 0 refused" || not_ok "bundle import $spec" "${out:0:1500}"
  check_rc "check $spec from the imported state: allow" 0 "$PC" check --state-dir "$B" "${CA[@]}" "$R/$spec"
done
# A key signer that requires the log: the same bundles are refused, for the
# crate's reason (fail closed), in check and provenance.
NOLOG="bundle must have an inclusion proof"
STRICT=$PC_WORK/policy-require-tlog.toml
sed 's|^key = "\(.*\)"$|key = "\1"\nrequire_tlog = true|' "$PORTCULLIS_POLICY" >"$STRICT"
grep -c '^require_tlog = true' "$STRICT" | grep -qx 2 && ok "policy with require_tlog = true on both rules' keys" ||
  not_ok "require_tlog policy" "$(cat "$STRICT")"
check_rc "check sig/bundle under require_tlog: deny" 1 "$PC" check --policy "$STRICT" "${CA[@]}" "$R/sig/bundle:1"
grep -qF "$NOLOG" <<<"$LAST_OUT" && ok "check sig/bundle under require_tlog says why" || not_ok "check sig/bundle under require_tlog says why" "${LAST_OUT:0:1000}"
check_rc "provenance att/bundle-v1-good under require_tlog: refused" 1 "$PC" provenance --policy "$STRICT" "${CA[@]}" "$R/att/bundle-v1-good:1"
grep -qF "$NOLOG" <<<"$LAST_OUT" && ok "provenance under require_tlog says why" || not_ok "provenance under require_tlog says why" "${LAST_OUT:0:1000}"

echo "# the evidence pack re-verifies each form that ran, from the pack alone"
EV=$PC_WORK/evidence
"$PC" evidence --since 30m -o "$EV" --address "$PC_CONTAINERD_SOCK" --this-policy-only >"$PC_WORK/logs/evidence.txt" 2>&1 || true
for spec in sig/legacy:1 att/legacy-v1-good:1 att/legacy-v02-good:1 sig/bundle:1 att/bundle-v1-good:1; do
  kind=signature && [[ $spec == att/* ]] && kind=provenance
  st=$(jq -r --arg d "${DIGEST[$spec]}" --arg k "$kind" '[.images[] | select(.digest == $d) | .reverification[$k].status] | first // "absent"' "$EV/evidence.json" 2>/dev/null)
  [[ $st == pass ]] && ok "evidence pack: $spec's $kind re-verified from the pack (cosign's form)" ||
    not_ok "evidence pack: $spec's $kind re-verified" "status: ${st:-no evidence.json}" "$(tail -n 5 "$PC_WORK/logs/evidence.txt")"
done
check "evidence verify passes on the pack" "$PC" evidence verify "$EV"

echo "# NOT COVERED here: keyless cosign signing (needs Fulcio; see suite.sh for keyless bundles from the stand-in), the OCI 1.1 referrers API (above)"
summary
