#!/usr/bin/env bash
# Adversarial suite: hostile images, signatures, attestations, bundles, cache
# files, policies and rootfs tricks against the gate on the real containerd
# (io.containerd.portcullis.v2), runc, journald and docker-registry.
#
# Every case in the table must be REFUSED: ctr fails, its error carries the
# denial line "portcullis: denied ...", the reason contains a specific
# expected substring, and journald holds a deny record for that container
# whose PORTCULLIS_REASON contains the same substring. The script ends with
# the case count and "all N refused", then "N passed, N failed".
#
# Crafted material comes from integration/signer (portcullis-testsign),
# integration/attest (DSSE, in-toto), integration/keyless (local Fulcio,
# Rekor and TSA stand-in) and integration/adversarial/craft.py (cache entries
# rewritten the way a hostile registry or a state-directory writer could).
#
# Run after setup.sh, attest/install.sh and keyless/install.sh (test-all.sh
# does all of that); set PC_WORK and PC_REGISTRY to keep off other runs.
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

SIGN="$PC_BIN_DIR/portcullis-testsign"
PC="$PC_BIN_DIR/portcullis"
CRAFT=(python3 "$HERE/adversarial/craft.py")
KEYS=$PC_WORK/keys
ATT=$PC_WORK/att
KL=$PC_WORK/keyless
CACHE=$PORTCULLIS_STATE_DIR/cache/sha256
export PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

CASES=0
REFUSED=0
# judge NAME ID PATTERN RC OUT: one TAP line for one case. It passes when the
# start was refused (RC non-zero) with the denial line and PATTERN in the
# client's error OUT, and journald holds a deny record for container ID whose
# PORTCULLIS_REASON contains PATTERN.
judge() {
  local name=$1 id=$2 pattern=$3 rc=$4 out=$5 jv reason problems=()
  CASES=$((CASES + 1))
  ((rc != 0)) || problems+=("expected a refusal, it started")
  grep -qF "portcullis: denied " <<<"$out" || problems+=("no denial line in: $out")
  grep -qF -- "$pattern" <<<"$out" || problems+=("reason lacks '$pattern': $out")
  jv=$(journal_field "$id" PORTCULLIS_VERDICT) || jv="(no record)"
  [[ $jv == deny ]] || problems+=("journal verdict for $id is $jv, expected deny")
  reason=$(journal_field "$id" PORTCULLIS_REASON || true)
  grep -qF -- "$pattern" <<<"$reason" || problems+=("PORTCULLIS_REASON lacks '$pattern': $reason")
  if ((${#problems[@]})); then
    not_ok "$name" "${problems[@]}"
  else
    REFUSED=$((REFUSED + 1))
    ok "$name ($pattern)"
  fi
}

# refuse NAME IMAGE PATTERN: one table case: `ctr run` of IMAGE through the
# gate, judged as above.
refuse() {
  local name=$1 image=$2 pattern=$3 id out rc
  id=$(new_id "$name")
  set +e
  out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" run --rm \
    --runtime "$RUNTIME" "$R/$image" "$id" /bin/true 2>&1)
  rc=$?
  set -e
  judge "$name" "$id" "$pattern" "$rc" "$out"
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
}

# refuse_task NAME ID PATTERN: a case whose container ID is already created
# (rootfs tricks); starts its task and expects the same refusal.
refuse_task() {
  local name=$1 id=$2 pattern=$3 out rc
  set +e
  out=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" tasks start "$id" 2>&1)
  rc=$?
  set -e
  judge "$name" "$id" "$pattern" "$rc" "$out"
  pc_ctr tasks delete "$id" >/dev/null 2>&1 || true
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
}

declare -A DIGEST
img() { # SPEC...: push each REPO:TAG (a distinct image) and record its digest
  local spec
  for spec in "$@"; do
    DIGEST[$spec]=$(pc_push_image "$spec" "${spec//[:\/]/-}" | tail -n 1)
  done
}
# push_layered SPEC: an image with one more layer than the others (so another
# chain ID), for the lineage cases; every pc_push_image variant shares layers.
push_layered() {
  local spec=$1 tag=layered-${1//[:\/]/-} marker=$PC_WORK/images/marker
  printf '%s\n' "$spec" >"$marker"
  _pc_img_run umoci config --image "$(_pc_img_layout):base" --tag "$tag" --no-history &&
    _pc_img_run umoci insert --image "$(_pc_img_layout):$tag" "$marker" /marker &&
    DIGEST[$spec]=$(_pc_img_push "$tag" "$spec")
}
entry() { printf '%s/%s.json\n' "$CACHE" "${DIGEST[$1]#sha256:}"; }
sign() { "$SIGN" sign --plain-http --key "$KEYS/${2:-release}.key" "$R/$1" >/dev/null; }

policy() {
  write_policy <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "sig"
images = ["$R/adv/sig/*", "$R/adv/cache/*", "$R/adv/lineage/*"]
[[rule.signer]]
key = "$KEYS/release.pub"

[[rule]]
name = "prov"
images = ["$R/adv/prov/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
[rule.provenance]
builder_ids = ["$GOOD_BUILDER"]
source_uris = ["$GOOD_SOURCE"]
[[rule.provenance.signer]]
key = "$KEYS/builder.pub"

[[rule]]
name = "keyless-other-ca"
images = ["$R/adv/kl/untrusted-ca"]
trust_root = "$KL/untrusted-ca.root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"

[[rule]]
name = "keyless"
images = ["$R/adv/kl/*"]
trust_root = "$KL/trusted_root.json"
[[rule.signer]]
issuer = "$KL_ISS"
subject = "$KL_ID"
EOF
}

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet)

# The verdict is the suite's: a cleanup failure is reported on stderr, and
# set -e must not cut the cleanup short.
trap 'pc_exit_trap $?' EXIT
mkdir -p "$PC_WORK"
pc_start_registry
pc_start_containerd
mkdir -p "$KEYS" "$PORTCULLIS_STATE_DIR" "$ATT" "$KL"

echo "# keys"
for k in release other builder; do
  "$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/$k.key" --public "$KEYS/$k.pub"
done
openssl genpkey -algorithm X25519 -out "$KEYS/x25519.key" 2>/dev/null
openssl pkey -in "$KEYS/x25519.key" -pubout -out "$KEYS/x25519.pub"
GOOD_BUILDER=https://builder.example/slsa/v1
GOOD_SOURCE=https://git.example/acme/app

echo "# key-signed images (cosign registry format)"
SIG_MUTATIONS=(sig-truncated sig-oversized sig-bad-base64 sig-missing payload-truncated payload-oversized
  payload-duplicate-digest payload-deep-nesting payload-wrong-type payload-unknown-critical payload-other-digest
  blob-digest-mismatch)
CACHE_CASES=(symlink hardlink swapped corrupt oversized entry-duplicate-subject entry-deep-nesting entry-format-2
  entry-unknown-field directory fifo)
img adv/sig/good:1 adv/sig/unsigned:1 adv/sig/otherkey:1 adv/sig/replayed:1 adv/keytype/app:1 adv/lineage/good:1
push_layered adv/lineage/other:1
push_layered adv/lineage/retag:1
for m in "${SIG_MUTATIONS[@]}"; do img "adv/sig/$m:1"; done
for c in "${CACHE_CASES[@]}"; do img "adv/cache/$c:1"; done
sign adv/sig/good:1
sign adv/sig/otherkey:1 other
sign adv/keytype/app:1
sign adv/lineage/good:1
for m in "${SIG_MUTATIONS[@]}"; do sign "adv/sig/$m:1"; done
for c in "${CACHE_CASES[@]}"; do sign "adv/cache/$c:1"; done
# replay: adv/sig/good's genuine signature copied under adv/sig/replayed's .sig tag
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
  "docker://$R/adv/sig/good:sha256-${DIGEST[adv/sig/good:1]#sha256:}.sig" \
  "docker://$R/adv/sig/replayed:sha256-${DIGEST[adv/sig/replayed:1]#sha256:}.sig"

echo "# attestations (DSSE by securesystemslib and craft.py), attached in cosign's .att format"
ENV_MUTATIONS=(envelope-truncated envelope-oversized envelope-bad-base64 envelope-duplicate-payload)
PROV=(good replayed subject-mismatch payload-type-swap wrong-builder wrong-source untrusted-signer bare-signature
  statement-duplicate-keys statement-deep-nesting malformed-predicate none "${ENV_MUTATIONS[@]}")
for p in "${PROV[@]}"; do
  img "adv/prov/$p:1"
  sign "adv/prov/$p:1"
done
attest() { # NAME KEY [make_attestation options...]: attest adv/prov/NAME and attach it
  local name=$1 spec=adv/prov/$1:1 key=$2 out=$ATT/$1.json
  shift 2
  python3 "$HERE/attest/make_attestation.py" --key "$KEYS/$key.key" --subject-digest "${DIGEST[$spec]}" \
    --subject-name "$R/adv/prov/$name" --predicate-version v1 --source-uri "$GOOD_SOURCE" \
    --out "$out" "$@" >/dev/null
  attach_att "$name" "$out"
}
attach_att() { "$SIGN" attach-attestation --plain-http --envelope "$2" "$R/adv/prov/$1@${DIGEST[adv/prov/$1:1]}" >/dev/null; }
attest good builder --builder-id "$GOOD_BUILDER"
attach_att replayed "$ATT/good.json"
python3 "$HERE/attest/make_attestation.py" --key "$KEYS/builder.key" --subject-digest "${DIGEST[adv/prov/good:1]}" \
  --subject-name "$R/adv/prov/subject-mismatch" --predicate-version v1 --builder-id "$GOOD_BUILDER" \
  --source-uri "$GOOD_SOURCE" --out "$ATT/subject-mismatch.json" >/dev/null
attach_att subject-mismatch "$ATT/subject-mismatch.json"
attest payload-type-swap builder --builder-id "$GOOD_BUILDER" --payload-type application/vnd.cncf.notary.payload.v1+json
attest wrong-builder builder --builder-id https://evil.example/builder
attest wrong-source builder --builder-id "$GOOD_BUILDER" --source-uri https://git.example/mallory/app
attest untrusted-signer other --builder-id "$GOOD_BUILDER"
attest malformed-predicate builder --builder-id "$GOOD_BUILDER" --malform builder-id-number
for m in "${ENV_MUTATIONS[@]}"; do attest "$m" builder --builder-id "$GOOD_BUILDER"; done
# A statement made genuinely for NAME, rewritten by EDIT (a python expression
# over the JSON text t), then signed by the trusted builder key with craft.py.
crafted_statement() { # NAME EDIT [craft.py dsse options...]
  local name=$1 edit=$2 spec=adv/prov/$1:1
  shift 2
  python3 "$HERE/attest/make_attestation.py" --key "$KEYS/builder.key" --subject-digest "${DIGEST[$spec]}" \
    --subject-name "$R/adv/prov/$name" --predicate-version v1 --builder-id "$GOOD_BUILDER" \
    --source-uri "$GOOD_SOURCE" --out "$ATT/$name.orig.json" >/dev/null
  python3 -c 'import base64,json,sys; e=json.load(open(sys.argv[1])); t=base64.b64decode(e["payload"]).decode(); t=eval(sys.argv[2]); open(sys.argv[3],"w").write(t)' \
    "$ATT/$name.orig.json" "$edit" "$ATT/$name.statement"
  "${CRAFT[@]}" dsse --key "$KEYS/builder.key" --payload-file "$ATT/$name.statement" --out "$ATT/$name.json" "$@"
  attach_att "$name" "$ATT/$name.json"
}
crafted_statement bare-signature 't' --bare
crafted_statement statement-duplicate-keys "t.replace('\"builder\":{\"id\":\"$GOOD_BUILDER\"}', '\"builder\":{\"id\":\"https://evil.example/builder\",\"id\":\"$GOOD_BUILDER\"}')"
crafted_statement statement-deep-nesting "t[:-1] + ',\"x\":' + '['*100000 + ']'*100000 + '}'"
grep -qF '"id":"https://evil.example/builder","id":' "$ATT/statement-duplicate-keys.statement"

echo "# keyless: Sigstore bundles from the local Fulcio/Rekor/TSA stand-in, attached as referrers"
pc_start_standin "$KL"
KL_ID=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
KL_ISS=https://token.actions.githubusercontent.com
keyless_sign() { # NAME SUBJECT ISSUER [sign-image options...]
  local name=$1 subject=$2 issuer=$3 spec=adv/kl/$1:1
  shift 3
  pc_manifest_raw "$spec" >"$KL/$name.manifest"
  pc_node "$HERE/keyless/sign-image.mjs" --standin-url "$STANDIN_URL" --artifact "$KL/$name.manifest" \
    --digest "${DIGEST[$spec]}" --subject "$subject" --issuer "$issuer" --out "$KL/$name.bundle.json" \
    --trusted-root-out "$KL/$name.root.json" "$@" >/dev/null
  attach_bundle "$name" "$KL/$name.bundle.json"
}
attach_bundle() { "$SIGN" attach-bundle --plain-http --bundle "$2" "$R/adv/kl/$1@${DIGEST[adv/kl/$1:1]}" >/dev/null; }
BUNDLE_MUTATIONS=(bundle-truncated bundle-oversized bundle-duplicate-key bundle-deep-nesting)
KLS=(good wrong-identity wrong-issuer cert-expired cert-not-yet-valid untrusted-ca forged-index forged-time
  forged-body forged-proof replayed "${BUNDLE_MUTATIONS[@]}")
for k in "${KLS[@]}"; do img "adv/kl/$k:1"; done
keyless_sign good "$KL_ID" "$KL_ISS"
keyless_sign wrong-identity "https://github.com/mallory/app/.github/workflows/release.yml@refs/tags/v1.0.0" "$KL_ISS"
keyless_sign wrong-issuer "$KL_ID" https://accounts.google.com
keyless_sign cert-expired "$KL_ID" "$KL_ISS" --cert-validity-offset -3600
keyless_sign cert-not-yet-valid "$KL_ID" "$KL_ISS" --cert-validity-offset 3600
# Signed by the stand-in's CA; the rule trusts only the other CA this writes.
keyless_sign untrusted-ca "$KL_ID" "$KL_ISS" --other-ca-root
for f in index time body proof; do keyless_sign "forged-$f" "$KL_ID" "$KL_ISS" --forge-log-entry "$f"; done
attach_bundle replayed "$KL/good.bundle.json"
for m in "${BUNDLE_MUTATIONS[@]}"; do keyless_sign "$m" "$KL_ID" "$KL_ISS"; done
kill "$STANDIN_PID" 2>/dev/null || true

echo "# tag moved after pull: containerd holds the first image, the registry's tag now names a signed one"
img adv/sig/moved:1
pc_pull adv/sig/moved:1 >/dev/null
MOVED_PULLED=${DIGEST[adv/sig/moved:1]}
DIGEST[adv/sig/moved:1]=$(pc_push_image adv/sig/moved:1 adv-sig-moved-2 | tail -n 1)
sign adv/sig/moved:1
[[ $MOVED_PULLED != "${DIGEST[adv/sig/moved:1]}" ]]

echo "# pull into containerd, fetch signatures into the node cache"
for spec in "${!DIGEST[@]}"; do
  [[ $spec == adv/sig/moved:1 ]] || pc_pull "$spec" >/dev/null
  "$PC" fetch --plain-http "$R/$spec" >/dev/null 2>&1 || true
done
[[ -s $CACHE/${DIGEST[adv/sig/moved:1]#sha256:}.json && ! -e $CACHE/${MOVED_PULLED#sha256:}.json ]]

echo "# hostile cache entries (what a hostile registry or state-directory writer leaves)"
other_digest=${DIGEST[adv/sig/good:1]}
for m in "${SIG_MUTATIONS[@]}"; do
  "${CRAFT[@]}" mutate "$(entry "adv/sig/$m:1")" "$m" --key "$KEYS/release.key" --other-digest "$other_digest"
done
for m in "${ENV_MUTATIONS[@]}"; do "${CRAFT[@]}" mutate "$(entry "adv/prov/$m:1")" "$m"; done
for m in "${BUNDLE_MUTATIONS[@]}"; do "${CRAFT[@]}" mutate "$(entry "adv/kl/$m:1")" "$m"; done
for m in entry-duplicate-subject entry-deep-nesting entry-format-2 entry-unknown-field; do
  "${CRAFT[@]}" mutate "$(entry "adv/cache/$m:1")" "$m" --other-digest "$other_digest"
done
good_entry=$(entry adv/sig/good:1)
mv "$(entry adv/cache/symlink:1)" "$PC_WORK/symlink-target.json"
ln -s "$PC_WORK/symlink-target.json" "$(entry adv/cache/symlink:1)"
mv "$(entry adv/cache/hardlink:1)" "$PC_WORK/hardlink-outside.json"
ln "$PC_WORK/hardlink-outside.json" "$(entry adv/cache/hardlink:1)"
cp "$good_entry" "$(entry adv/cache/swapped:1)"
truncate -s 100 "$(entry adv/cache/corrupt:1)"
truncate -s 40M "$(entry adv/cache/oversized:1)"
rm "$(entry adv/cache/directory:1)" && mkdir "$(entry adv/cache/directory:1)"
rm "$(entry adv/cache/fifo:1)" && mkfifo "$(entry adv/cache/fifo:1)"

policy
out=$("$PC" policy check "$PORTCULLIS_POLICY" 2>&1) || { echo "$out" >&2; exit 1; }

echo "# the gate still admits the genuine images (controls)"
start_case control-key-signed adv/sig/good:1 run allow
start_case control-provenance adv/prov/good:1 run allow
start_case control-keyless adv/kl/good:1 run allow

echo "# signatures (cosign simple signing)"
refuse unsigned adv/sig/unsigned:1 "no signatures cached for ${DIGEST[adv/sig/unsigned:1]}"
refuse signed-by-another-key adv/sig/otherkey:1 "no signature verifies with the rule's signer(s) key:$KEYS/release.pub"
refuse signature-replayed-from-another-image adv/sig/replayed:1 "a signature replayed from another image never counts"
refuse wrong-digest-signed-payload-names-another-image adv/sig/payload-other-digest:1 "names $other_digest, not the image being started"
refuse tag-moved-after-pull adv/sig/moved:1 "no signatures cached for $MOVED_PULLED"
refuse blob-replaced-descriptor-kept adv/sig/blob-digest-mismatch:1 "layer blob hashes to"
refuse signature-truncated adv/sig/sig-truncated:1 "no signature verifies with the rule's signer(s) key:$KEYS/release.pub"
refuse signature-oversized adv/sig/sig-oversized:1 "over 4096 characters"
refuse signature-invalid-base64 adv/sig/sig-bad-base64:1 "signature annotation is not valid base64"
refuse signature-missing adv/sig/sig-missing:1 "signature layer has no \`dev.cosignproject.cosign/signature\` annotation"
refuse payload-truncated adv/sig/payload-truncated:1 "signature payload is not a simple-signing document: EOF while parsing"
refuse payload-oversized adv/sig/payload-oversized:1 "over the 262144-byte limit"
refuse payload-duplicate-digest-key adv/sig/payload-duplicate-digest:1 "duplicate"
refuse payload-deeply-nested adv/sig/payload-deep-nesting:1 "recursion limit exceeded"
refuse payload-wrong-type adv/sig/payload-wrong-type:1 "cosign container image attestation"
refuse payload-unknown-critical-field adv/sig/payload-unknown-critical:1 "override"

echo "# attestations and provenance (DSSE, in-toto, SLSA)"
refuse attestation-replayed-from-another-image adv/prov/replayed:1 "an attestation of another image never counts"
refuse in-toto-subject-mismatch adv/prov/subject-mismatch:1 "an attestation of another image never counts"
refuse dsse-payload-type-swap adv/prov/payload-type-swap:1 'DSSE payload type is "application/vnd.cncf.notary.payload.v1+json"'
refuse provenance-disallowed-builder adv/prov/wrong-builder:1 'builder id "https://evil.example/builder" is not one of the allowed builder_ids'
refuse provenance-disallowed-source adv/prov/wrong-source:1 "https://git.example/mallory/app"
refuse attestation-untrusted-signer adv/prov/untrusted-signer:1 "DSSE signature(s) verifies with the signer(s)"
refuse dsse-signature-over-bare-payload adv/prov/bare-signature:1 "DSSE signature(s) verifies with the signer(s)"
refuse statement-duplicate-keys adv/prov/statement-duplicate-keys:1 "duplicate"
refuse statement-deeply-nested adv/prov/statement-deep-nesting:1 "in-toto statement is not valid JSON: recursion limit exceeded"
refuse provenance-malformed-predicate adv/prov/malformed-predicate:1 "predicate.runDetails.builder.id"
refuse provenance-missing adv/prov/none:1 "no provenance attestation cached"
refuse envelope-truncated adv/prov/envelope-truncated:1 "not a DSSE envelope: EOF while parsing"
refuse envelope-oversized adv/prov/envelope-oversized:1 "over the 2097152-byte limit"
refuse envelope-invalid-base64 adv/prov/envelope-bad-base64:1 "base64"
refuse envelope-duplicate-payload-key adv/prov/envelope-duplicate-payload:1 "duplicate"
# (Unknown envelope fields, however deeply nested, are ignored as the DSSE
# spec asks: they are never signed over; dsse::tests::structure_is_strict.)

echo "# keyless (Fulcio certificates, Rekor entries, Sigstore bundles)"
refuse keyless-wrong-identity adv/kl/wrong-identity:1 "does not match the signer's subject"
refuse keyless-wrong-issuer adv/kl/wrong-issuer:1 "does not match the signer's issuer"
refuse keyless-cert-expired-at-log-time adv/kl/cert-expired:1 "CertExpired"
refuse keyless-cert-not-yet-valid-at-log-time adv/kl/cert-not-yet-valid:1 "CertNotValidYet"
refuse keyless-untrusted-ca adv/kl/untrusted-ca:1 "certificate chain validation failed"
refuse rekor-entry-forged-index adv/kl/forged-index:1 "SET verification failed"
refuse rekor-entry-forged-integrated-time adv/kl/forged-time:1 "SET verification failed"
refuse rekor-entry-forged-body adv/kl/forged-body:1 "invalid inclusion promise: SET verification failed"
refuse rekor-entry-forged-inclusion-proof adv/kl/forged-proof:1 "no verified timestamp"
refuse bundle-replayed-from-another-image adv/kl/replayed:1 "message digest in bundle does not match artifact hash"
refuse bundle-truncated adv/kl/bundle-truncated:1 "bundle is malformed: EOF while parsing"
refuse bundle-oversized adv/kl/bundle-oversized:1 "over the 8388608-byte limit"
refuse bundle-duplicate-key adv/kl/bundle-duplicate-key:1 "duplicate"
refuse bundle-deeply-nested adv/kl/bundle-deep-nesting:1 "bundle is malformed: JSON error: recursion limit exceeded"

echo "# the cache directory"
refuse cache-entry-symlink adv/cache/symlink:1 "not a regular file"
refuse cache-entry-hard-link adv/cache/hardlink:1 "hard link"
refuse cache-entry-swapped-for-another-digests adv/cache/swapped:1 "swapped for another digest"
refuse cache-entry-truncated adv/cache/corrupt:1 "invalid JSON"
refuse cache-entry-oversized adv/cache/oversized:1 "over the 33554432-byte limit"
refuse cache-entry-duplicate-keys adv/cache/entry-duplicate-subject:1 "duplicate field \`subject\`"
refuse cache-entry-deeply-nested adv/cache/entry-deep-nesting:1 "is corrupt: invalid JSON: invalid type: sequence"
refuse cache-entry-unknown-format adv/cache/entry-format-2:1 "entry format 2 is not the supported format 1"
refuse cache-entry-unknown-field adv/cache/entry-unknown-field:1 "unknown field \`trusted\`"
refuse cache-entry-directory adv/cache/directory:1 "not a regular file"
refuse cache-entry-fifo adv/cache/fifo:1 "not a regular file"

echo "# policy"
cp "$PORTCULLIS_POLICY" "$PC_WORK/policy.good"
{ cat "$PC_WORK/policy.good"; printf 'surprise = true\n'; } >"$PORTCULLIS_POLICY"
refuse policy-unknown-key adv/sig/good:1 "unknown key \`surprise\`"
{ cat "$PC_WORK/policy.good"; printf '\n[[rule]]\nname = "nobody"\nimages = ["%s/adv/empty/*"]\n' "$R"; } >"$PORTCULLIS_POLICY"
refuse policy-empty-signer-list adv/sig/good:1 "an empty signer list is an error, not a pass"
# A signer key of a type that cannot verify signatures (X25519): the whole
# policy is invalid, so every start is refused, this image's too.
{ cat "$PC_WORK/policy.good"; printf '\n[[rule]]\nname = "keytype"\nimages = ["%s/adv/keytype/*"]\n[[rule.signer]]\nkey = "%s"\n' "$R" "$KEYS/x25519.pub"; } >"$PORTCULLIS_POLICY"
refuse wrong-key-type-in-policy adv/keytype/app:1 "is not a usable public key: Invalid key: unsupported key algorithm"
rm -f "$PORTCULLIS_POLICY"
refuse policy-missing adv/sig/good:1 "cannot read policy"
# A rule shadowed by an earlier, broader one: the policy loads (so this is a
# warning, not a refusal), and `policy check` names both rules.
{
  printf 'mode = "enforce"\n\n[[rule]]\nname = "broad"\nimages = ["%s/adv/**"]\naction = "allow"\n\n' "$R"
  sed -n '/^\[\[rule\]\]/,$p' "$PC_WORK/policy.good"
} >"$PC_WORK/policy.shadowed"
out=$("$PC" policy check "$PC_WORK/policy.shadowed" 2>&1) && rc=0 || rc=$?
if ((rc == 0)) && grep -qF 'is shadowed by rule "broad"' <<<"$out"; then
  ok "policy check warns: a rule shadowed by an earlier one ($(grep -c 'is shadowed' <<<"$out") warning(s))"
else
  not_ok "policy check warns about a shadowed rule" "rc=$rc $out"
fi
cp "$PC_WORK/policy.good" "$PORTCULLIS_POLICY"

echo "# rootfs lineage: the snapshot's parent chain must be the verified image's chain ID"
id=$(new_id rootfs)
rootfs=$PC_WORK/bare-rootfs
mkdir -p "$rootfs/bin" && cp /bin/busybox "$rootfs/bin/" && ln -sf busybox "$rootfs/bin/true"
pc_ctr containers create --runtime "$RUNTIME" --rootfs "$rootfs" "$id" /bin/true >/dev/null
refuse_task ctr-run-rootfs-without-image "$id" "bare rootfs"
id=$(new_id emptysnap)
pc_ctr containers create --runtime "$RUNTIME" "$R/adv/lineage/good:1" "$id" /bin/true >/dev/null
pc_ctr snapshots rm "$id" >/dev/null
pc_ctr snapshots prepare "$id" >/dev/null
refuse_task snapshot-swapped-for-an-empty-one "$id" "does not descend from the verified image"
other=$(new_id othersnap)
pc_ctr containers create --runtime "$RUNTIME" "$R/adv/lineage/other:1" "$other" /bin/true >/dev/null
other_parent=$(pc_ctr snapshots info "$other" | jq -r .Parent)
pc_ctr containers rm "$other" >/dev/null
id=$(new_id foreignsnap)
pc_ctr containers create --runtime "$RUNTIME" "$R/adv/lineage/good:1" "$id" /bin/true >/dev/null
good_parent=$(pc_ctr snapshots info "$id" | jq -r .Parent)
[[ -n $other_parent && $other_parent != "$good_parent" ]] ||
  not_ok "the layered image has its own chain ID" "$other_parent vs $good_parent"
pc_ctr snapshots rm "$id" >/dev/null
pc_ctr snapshots prepare "$id" "$other_parent" >/dev/null
refuse_task snapshot-on-another-images-chain "$id" "does not descend from the verified image"
id=$(new_id retag)
pc_ctr containers create --runtime "$RUNTIME" "$R/adv/lineage/retag:1" "$id" /bin/true >/dev/null
pc_ctr images tag --force "$R/adv/lineage/good:1" "$R/adv/lineage/retag:1" >/dev/null
refuse_task image-retagged-after-create "$id" "does not descend from the verified image"

echo
echo "# adversarial cases: $CASES, refused as expected: $REFUSED"
if ((CASES == REFUSED)); then
  echo "# all $CASES refused"
else
  echo "# NOT all refused: $((CASES - REFUSED)) of $CASES"
fi
summary
