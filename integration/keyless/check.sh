#!/usr/bin/env bash
# End-to-end check of the keyless stand-in against Portcullis's verifier:
# signs a manifest (and an in-toto statement) with sign-image.mjs /
# sign-attestation.mjs, then runs `portcullis verify-bundle` on each output.
# The good bundles must verify; each negative variant must be refused, and
# for the reason it was made for (the verifier's message is matched).
#
#   integration/keyless/check.sh [--manifest FILE]
#
# Uses $PORTCULLIS if set, else builds the crate (cargo build -q) and uses
# target/debug/portcullis. Prints one line per case and "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

manifest=
while (($#)); do
  case $1 in
    --manifest) manifest=$2; shift 2 ;;
    *) echo "usage: $0 [--manifest FILE]" >&2; exit 2 ;;
  esac
done

bash "$here/install.sh" || exit 1
if [[ -z ${PORTCULLIS:-} ]]; then
  (cd "$repo" && cargo build -q --bin portcullis) || exit 1
  PORTCULLIS=$repo/target/debug/portcullis
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/keyless-check.XXXXXX")
standin_pid=
cleanup() {
  if [[ -n $standin_pid ]]; then
    kill "$standin_pid" 2>/dev/null
    wait "$standin_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z $manifest ]]; then
  manifest=$work/manifest.json
  # An OCI image manifest's bytes; its sha256 is the "image digest".
  printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}' >"$manifest"
fi
digest=sha256:$(sha256sum "$manifest" | cut -d' ' -f1)

ID=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
ISS=https://token.actions.githubusercontent.com
CLAIMS=(--extension repository=acme/app --extension ref=refs/tags/v1.0.0
  --extension sha=0123456789abcdef0123456789abcdef01234567
  --extension workflow_ref=acme/app/.github/workflows/release.yml@refs/tags/v1.0.0)

cat >"$work/statement.json" <<EOF
{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.local/acme/app","digest":{"sha256":"${digest#sha256:}"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{"workflow":{"ref":"refs/tags/v1.0.0","repository":"https://github.com/acme/app","path":".github/workflows/release.yml"}},"internalParameters":{},"resolvedDependencies":[]},"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"},"metadata":{"invocationId":"https://github.com/acme/app/actions/runs/1/attempts/1"}}}}
EOF

passed=0 failed=0
n=0
# case NAME EXPECT(ok|refuse:SUBSTRING) TOOL(image|attestation) [VERIFY_ID [VERIFY_ISS]] -- SIGN_ARGS...
case_() {
  local name=$1 expect=$2 tool=$3
  shift 3
  local vid=$ID viss=$ISS
  if [[ $1 != -- ]]; then vid=$1; shift; fi
  if [[ $1 != -- ]]; then viss=$1; shift; fi
  shift # --
  n=$((n + 1))
  local b=$work/$n.bundle.json r=$work/$n.root.json
  local sign_out
  if [[ $tool == image ]]; then
    sign_out=$(node "$here/sign-image.mjs" --artifact "$manifest" --digest "$digest" \
      --subject "$ID" --issuer "$ISS" "${CLAIMS[@]}" --out "$b" --trusted-root-out "$r" "$@" 2>&1)
  else
    sign_out=$(node "$here/sign-attestation.mjs" --statement "$work/statement.json" \
      --subject "$ID" --issuer "$ISS" "${CLAIMS[@]}" --out "$b" --trusted-root-out "$r" "$@" 2>&1)
  fi
  if (($? != 0)); then
    echo "FAIL $name: signing failed: $sign_out"
    failed=$((failed + 1))
    return
  fi
  local out rc
  out=$("$PORTCULLIS" verify-bundle --bundle "$b" --certificate-identity "$vid" \
    --certificate-oidc-issuer "$viss" --trusted-root "${ROOT_OVERRIDE:-$r}" "$digest" 2>&1)
  rc=$?
  out=${out//$'\n'/ | }
  if [[ $expect == ok ]]; then
    if ((rc == 0)); then
      echo "ok   $name: verified ($out)"
      passed=$((passed + 1))
    else
      echo "FAIL $name: expected to verify, exit $rc: $out"
      failed=$((failed + 1))
    fi
  else
    local want=${expect#refuse:}
    if ((rc != 0)) && [[ $out == *"$want"* ]]; then
      echo "ok   $name: refused, exit $rc: $out"
      passed=$((passed + 1))
    else
      echo "FAIL $name: expected refusal containing \"$want\", exit $rc: $out"
      failed=$((failed + 1))
    fi
  fi
}

echo "# keyless stand-in check: digest $digest, verifier $PORTCULLIS"
# Good bundles.
case_ good-rekor ok image -- --tlog rekor
case_ good-rekor-tsa ok image -- --tlog rekor --tsa yes
case_ good-bundle-v0.2 ok image -- --bundle-version 0.2
case_ good-attestation ok attestation -- --tsa yes
# Verifier policy: wrong signer.
case_ wrong-identity refuse:"identity mismatch" image \
  https://github.com/acme/other/.github/workflows/release.yml@refs/tags/v1.0.0 -- --tlog rekor
case_ wrong-issuer refuse:"issuer mismatch" image "$ID" https://accounts.google.com -- --tlog rekor
# Forged transparency-log entries (a real bundle, tampered after signing).
case_ forged-log-index refuse:"SET verification failed" image -- --forge-log-entry index
case_ forged-integrated-time refuse:"SET verification failed" image -- --forge-log-entry time
case_ forged-entry-body refuse:"SET verification failed" image -- --forge-log-entry body
case_ forged-body-no-set refuse:"inclusion proof verification failed" image -- --forge-log-entry proof --tsa yes
case_ forged-attestation-entry refuse:"SET verification failed" attestation -- --forge-log-entry body
# Trust: a trusted root without the issuing CA.
case_ other-ca-root refuse:"certificate chain validation failed" image -- --other-ca-root
case_ other-ca-root-attestation refuse:"certificate chain validation failed" attestation -- --other-ca-root
# Certificate outside its validity when logged / timestamped.
case_ cert-expired-at-log-time refuse:"CertExpired" image -- --cert-validity-offset -3600
case_ cert-not-yet-valid refuse:"CertNotValidYet" image -- --cert-validity-offset 3600 --tsa yes
# No transparency-log entry: the crate's default policy requires one.
case_ tsa-only-no-tlog refuse:"must have an inclusion proof" image -- --tlog none --tsa yes
# Known limitation of sigstore-verify 0.15 (its DER decoder): RFC 3161
# genTime with fractional seconds is valid, but refused.
case_ tsa-subsecond-gentime refuse:"GeneralizedTime" image -- --tsa subsecond

# A running stand-in shared by several signing runs: one trusted root.
node "$here/standin.mjs" --url-file "$work/url" --trusted-root-out "$work/shared-root.json" \
  >/dev/null 2>"$work/standin.log" &
standin_pid=$!
for _ in $(seq 100); do [[ -s $work/url ]] && break; sleep 0.1; done
if [[ -s $work/url ]]; then
  url=$(cat "$work/url")
  ROOT_OVERRIDE=$work/shared-root.json case_ shared-standin-image ok image -- --standin-url "$url" --tsa yes
  ROOT_OVERRIDE=$work/shared-root.json case_ shared-standin-attestation ok attestation -- --standin-url "$url"
  ROOT_OVERRIDE=$work/shared-root.json case_ shared-standin-expired refuse:"CertExpired" image -- --standin-url "$url" --cert-validity-offset -3600
else
  echo "FAIL shared-standin: standin.mjs did not start: $(cat "$work/standin.log")"
  failed=$((failed + 1))
fi

echo "keyless: $passed passed, $failed failed"
((failed == 0))
