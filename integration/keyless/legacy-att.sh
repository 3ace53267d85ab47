#!/usr/bin/env bash
# Writes a keyless DSSE Sigstore bundle (from sign-attestation.mjs) in the
# form cosign's classic `attest` and the SLSA container generator push as a
# layer of the `sha256-<hex>.att` image:
#   OUT/envelope.json     the layer blob: the DSSE envelope
#                         {"payloadType","payload","signatures":[{"keyid":"","sig"}]}
#   OUT/annotations.json  the layer annotations: predicateType,
#                         dev.cosignproject.cosign/signature (""),
#                         dev.sigstore.cosign/certificate (leaf PEM),
#                         dev.sigstore.cosign/chain (the CA PEM from ROOT),
#                         dev.sigstore.cosign/bundle (the Rekor bundle:
#                         SignedEntryTimestamp and Payload {body,
#                         integratedTime, logIndex, logID (hex)})
# Only fields are moved; every signature, SET and entry body is the
# stand-in's, unchanged.
#
# usage: legacy-att.sh BUNDLE.json TRUSTED_ROOT.json OUT_DIR
set -euo pipefail
bundle=$1 root=$2 out=$3
mkdir -p "$out"
pem() { while read -r b; do printf -- '-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' "$(fold -w 64 <<<"$b")"; done; }
jq -c '.dsseEnvelope | {payloadType, payload, signatures: [.signatures[] | {keyid: (.keyid // ""), sig}]}' "$bundle" >"$out/envelope.json"
cert=$(jq -r '.verificationMaterial.certificate.rawBytes' "$bundle" | pem)
chain=$(jq -r '.certificateAuthorities[0].certChain.certificates[].rawBytes' "$root" | pem)
log_id=$(jq -r '.verificationMaterial.tlogEntries[0].logId.keyId' "$bundle" | base64 -d | od -An -tx1 | tr -d ' \n')
predicate_type=$(jq -r '.dsseEnvelope.payload' "$bundle" | base64 -d | jq -r .predicateType)
rekor=$(jq -c --arg id "$log_id" '.verificationMaterial.tlogEntries[0] | {
    SignedEntryTimestamp: .inclusionPromise.signedEntryTimestamp,
    Payload: {body: .canonicalizedBody, integratedTime: (.integratedTime | tonumber),
      logIndex: (.logIndex | tonumber), logID: $id}}' "$bundle")
jq -n --arg pt "$predicate_type" --arg cert "$cert" --arg chain "$chain" --arg rekor "$rekor" '{
  "predicateType": $pt,
  "dev.cosignproject.cosign/signature": "",
  "dev.sigstore.cosign/certificate": $cert,
  "dev.sigstore.cosign/chain": $chain,
  "dev.sigstore.cosign/bundle": $rekor}' >"$out/annotations.json"
