#!/usr/bin/env node
// Keyless-sign a container image manifest: a Fulcio certificate for the given
// identity from the local stand-in (@sigstore/mock), a message signature
// over the manifest bytes (@sigstore/sign), a Rekor entry and/or an RFC 3161
// timestamp, written as a Sigstore bundle, plus the trusted root that verifies it.

import crypto from 'node:crypto';
import fs from 'node:fs';

import { MessageSignatureBundleBuilder } from '@sigstore/sign';

import {
  COMMON_OPTIONS,
  Failure,
  UsageError,
  buildBundle,
  forgeLogEntry,
  main,
  parse,
  summary,
  toBundleVersion,
  withStandin,
  writeOutputs,
} from './lib/sign.mjs';

const USAGE = `usage: node sign-image.mjs --artifact MANIFEST [--digest sha256:HEX]
         --subject IDENTITY --issuer URL [--extension CLAIM=VALUE ...]
         [--tlog rekor|none] [--tsa yes|no|subsecond] [--bundle-version 0.3|0.2]
         --out BUNDLE.json --trusted-root-out TRUSTED_ROOT.json
         [--standin-url http://127.0.0.1:PORT | --keys-dir DIR]
         [--cert-validity-offset SECONDS] [--forge-log-entry index|time|body|proof]
         [--other-ca-root]

--artifact     the image manifest's bytes (e.g. skopeo inspect --raw); the
               bundle's messageDigest is their sha256, i.e. the image digest.
               @sigstore/sign signs bytes, not a precomputed digest.
--digest       optional: fail unless sha256(MANIFEST) is this digest.
--extension    a GitHub Actions OIDC claim for the certificate, e.g.
               repository=acme/app, ref=refs/tags/v1.0.0, sha=..., workflow_ref=...
--tlog/--tsa   time evidence: a Rekor v1 entry (default) and/or an RFC 3161
               timestamp (default no; subsecond: genTime with milliseconds,
               which sigstore-verify 0.15 refuses).
--standin-url  use a running stand-in (standin.mjs) instead of starting one.
--keys-dir     keep the in-process stand-in's keys in DIR (PEM, made on first use).
Negative-test scenarios:
--cert-validity-offset S  the certificate's 10-minute validity starts at now+S
                          (e.g. -3600: expired when logged; 3600: not yet valid).
--forge-log-entry WHAT    after signing, alter the Rekor entry: index (logIndex+1),
                          time (integratedTime-1), body (the hash in the body), or
                          proof (body altered and the SET dropped, so only the
                          inclusion proof speaks for it; use with --tsa yes).
--other-ca-root           write a trusted root whose CA is a different mock CA.`;

await main(async (argv) => {
  const v = parse(
    argv,
    { ...COMMON_OPTIONS, artifact: { type: 'string' }, digest: { type: 'string' } },
    USAGE
  );
  if (!v.artifact) {
    throw new UsageError(
      '--artifact MANIFEST is required: @sigstore/sign 4.1 computes the messageDigest ' +
        'from the bytes it signs and has no way to sign a precomputed digest; pass the ' +
        `manifest bytes (skopeo inspect --raw docker://IMAGE > manifest.json)\n\n${USAGE}`
    );
  }
  const data = fs.readFileSync(v.artifact);
  const digest = `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
  if (v.digest !== undefined) {
    if (!/^sha256:[0-9a-f]{64}$/.test(v.digest)) {
      throw new UsageError('--digest must be sha256: and 64 lowercase hex characters');
    }
    if (v.digest !== digest) {
      throw new Failure(`sha256 of ${v.artifact} is ${digest}, not ${v.digest}`);
    }
  }

  await withStandin(v, async (url, standin) => {
    let bundle = await buildBundle(MessageSignatureBundleBuilder, { data }, v, url);
    bundle = toBundleVersion(bundle, v['bundle-version']);
    if (v['forge-log-entry']) forgeLogEntry(bundle, v['forge-log-entry']);
    await writeOutputs(bundle, v, url, standin);
    process.stdout.write(
      JSON.stringify(
        summary(bundle, {
          digest,
          bundle: v.out,
          trustedRoot: v['trusted-root-out'],
          scenario: {
            certValidityOffset: v['cert-validity-offset'] ?? null,
            forgeLogEntry: v['forge-log-entry'] ?? null,
            otherCARoot: v['other-ca-root'],
          },
        })
      ) + '\n'
    );
  });
});
