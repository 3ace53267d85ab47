#!/usr/bin/env node
// Keyless-sign an attestation (e.g. an in-toto Statement with a SLSA
// provenance predicate) into a DSSE-envelope Sigstore bundle: a Fulcio
// certificate for the identity from the local stand-in (@sigstore/mock), the
// DSSE signature (@sigstore/sign's DSSEBundleBuilder), a Rekor intoto/0.0.2
// entry and/or an RFC 3161 timestamp, plus the trusted root that verifies it.

import fs from 'node:fs';

import { DSSEBundleBuilder } from '@sigstore/sign';

import {
  COMMON_OPTIONS,
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

const USAGE = `usage: node sign-attestation.mjs --statement STATEMENT.json
         [--payload-type application/vnd.in-toto+json]
         --subject IDENTITY --issuer URL [--extension CLAIM=VALUE ...]
         [--tlog rekor|none] [--tsa yes|no|subsecond] [--bundle-version 0.3|0.2]
         --out BUNDLE.json --trusted-root-out TRUSTED_ROOT.json
         [--standin-url http://127.0.0.1:PORT | --keys-dir DIR]
         [--cert-validity-offset SECONDS] [--forge-log-entry index|time|body|proof]
         [--other-ca-root]

--statement  the DSSE payload, signed as given (bytes unchanged). Its subjects
             name what it is about, e.g. {"name": "...", "digest": {"sha256": HEX}}
             with the image digest; a verifier binds the bundle to an artifact
             through them.
Other options as in sign-image.mjs. The Rekor entry is intoto/0.0.2: the
mock Rekor logs the proposed entry as its body, which matches what Rekor
stores for intoto entries but not for dsse/0.0.1 entries (Rekor rewrites
those), so dsse entries from the mock would not verify.`;

await main(async (argv) => {
  const v = parse(
    argv,
    {
      ...COMMON_OPTIONS,
      statement: { type: 'string' },
      'payload-type': { type: 'string', default: 'application/vnd.in-toto+json' },
    },
    USAGE
  );
  if (!v.statement) throw new UsageError(`--statement is required\n\n${USAGE}`);
  const data = fs.readFileSync(v.statement);
  let subjects = [];
  if (v['payload-type'] === 'application/vnd.in-toto+json') {
    let statement;
    try {
      statement = JSON.parse(data.toString('utf8'));
    } catch (e) {
      throw new UsageError(`${v.statement} is not JSON: ${e.message}`);
    }
    subjects = (statement.subject || []).map((s) => ({
      name: s.name,
      sha256: s.digest?.sha256,
    }));
  }

  await withStandin(v, async (url, standin) => {
    let bundle = await buildBundle(
      DSSEBundleBuilder,
      { data, type: v['payload-type'] },
      v,
      url,
      {
        rekor: { entryType: 'intoto' },
        // v0.3 carries the certificate alone; v0.2 as a one-element chain.
        builder: { certificateChain: v['bundle-version'] === '0.2' },
      }
    );
    bundle = toBundleVersion(bundle, v['bundle-version']);
    if (v['forge-log-entry']) forgeLogEntry(bundle, v['forge-log-entry']);
    await writeOutputs(bundle, v, url, standin);
    process.stdout.write(
      JSON.stringify(
        summary(bundle, {
          payloadType: v['payload-type'],
          subjects,
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
