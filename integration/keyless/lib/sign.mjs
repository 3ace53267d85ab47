// Shared by sign-image.mjs and sign-attestation.mjs: command-line handling,
// the static identity token, bundle building with @sigstore/sign against the
// stand-in, and the deliberate tampering used by negative tests.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';

import {
  BUNDLE_V03_MEDIA_TYPE,
  bundleToJSON,
} from '@sigstore/bundle';
import { FulcioSigner, RekorWitness, TSAWitness } from '@sigstore/sign';

import { loadKeys, otherCACertificate, startStandin } from './standin.mjs';

export class UsageError extends Error {}
// An expected failure: reported as one line, exit 1.
export class Failure extends Error {}

// GitHub Actions OIDC claims that @sigstore/mock's Fulcio turns into Fulcio
// certificate extensions (1.3.6.1.4.1.57264.1.*). Other claim names are put
// in the token too, but the mock ignores them.
export const MOCK_FULCIO_CLAIMS = [
  'event_name',
  'sha',
  'workflow',
  'repository',
  'ref',
  'job_workflow_ref',
  'job_workflow_sha',
  'runner_environment',
  'repository_id',
  'repository_owner',
  'repository_owner_id',
  'workflow_ref',
  'workflow_sha',
  'repository_visibility',
  'run_id',
  'run_attempt',
];

// Options every signing command takes.
export const COMMON_OPTIONS = {
  subject: { type: 'string' },
  issuer: { type: 'string' },
  extension: { type: 'string', multiple: true, default: [] },
  tlog: { type: 'string', default: 'rekor' },
  tsa: { type: 'string', default: 'no' },
  out: { type: 'string' },
  'trusted-root-out': { type: 'string' },
  'bundle-version': { type: 'string', default: '0.3' },
  'standin-url': { type: 'string' },
  'keys-dir': { type: 'string' },
  'cert-validity-offset': { type: 'string' },
  'forge-log-entry': { type: 'string' },
  'other-ca-root': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

export function parse(argv, options, usage) {
  // Let option values be negative numbers: `--cert-validity-offset -3600`.
  argv = argv.reduce((out, arg, i, all) => {
    const prev = all[i - 1];
    if (/^-\d+$/.test(arg) && prev?.startsWith('--') && options[prev.slice(2)]?.type === 'string') {
      out[out.length - 1] = `${prev}=${arg}`;
    } else {
      out.push(arg);
    }
    return out;
  }, []);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UsageError(`${e.message}\n\n${usage}`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(usage + '\n');
    process.exit(0);
  }
  const need = (name) => {
    if (v[name] === undefined || v[name] === '') {
      throw new UsageError(`--${name} is required\n\n${usage}`);
    }
  };
  need('subject');
  need('issuer');
  need('out');
  need('trusted-root-out');
  if (!['rekor', 'none'].includes(v.tlog)) throw new UsageError('--tlog must be rekor or none');
  if (!['yes', 'no', 'subsecond'].includes(v.tsa)) {
    throw new UsageError('--tsa must be yes, no or subsecond');
  }
  if (!['0.2', '0.3'].includes(v['bundle-version'])) {
    throw new UsageError('--bundle-version must be 0.2 or 0.3');
  }
  if (v['cert-validity-offset'] !== undefined && !/^-?\d+$/.test(v['cert-validity-offset'])) {
    throw new UsageError('--cert-validity-offset takes whole seconds, e.g. -3600');
  }
  if (v['forge-log-entry'] !== undefined) {
    if (!['index', 'time', 'body', 'proof'].includes(v['forge-log-entry'])) {
      throw new UsageError('--forge-log-entry takes index, time, body or proof');
    }
    if (v.tlog !== 'rekor') throw new UsageError('--forge-log-entry needs --tlog rekor');
  }
  if (v['standin-url'] && v['keys-dir']) {
    throw new UsageError('--keys-dir applies to the in-process stand-in only (not with --standin-url)');
  }
  const claims = {};
  for (const e of v.extension) {
    const i = e.indexOf('=');
    if (i <= 0) throw new UsageError(`--extension wants name=value, got ${JSON.stringify(e)}`);
    const name = e.slice(0, i);
    if (['iss', 'sub', 'aud', 'iat', 'exp', 'email', 'email_verified'].includes(name)) {
      throw new UsageError(`--extension ${name}: use --subject/--issuer for the identity`);
    }
    if (!MOCK_FULCIO_CLAIMS.includes(name)) {
      process.stderr.write(
        `warning: @sigstore/mock's Fulcio makes no certificate extension of claim ${name}\n`
      );
    }
    claims[name] = e.slice(i + 1);
  }
  v.claims = claims;
  return v;
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

// An unsigned OIDC-shaped token: the mock Fulcio decodes it without checking
// a signature and puts `sub` in the certificate's SAN (a URI SAN), `iss` in
// the issuer extensions, and the GitHub claims in their extensions.
export function identityToken(subject, issuer, claims) {
  const now = Math.floor(Date.now() / 1000);
  return [
    b64url({ alg: 'none', typ: 'JWT' }),
    b64url({ ...claims, iss: issuer, sub: subject, aud: 'sigstore', iat: now, exp: now + 600 }),
    '',
  ].join('.');
}

// Run `fn(url, standin)` against the stand-in: a running one at `url`, or one
// started in this process on 127.0.0.1 for the duration of the call.
export async function withStandin(v, fn) {
  if (v['standin-url']) {
    const url = v['standin-url'].replace(/\/+$/, '');
    const host = new URL(url).hostname;
    if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) {
      throw new UsageError('--standin-url must be a loopback address');
    }
    return fn(url, null);
  }
  const standin = await startStandin({ keys: loadKeys(v['keys-dir']) });
  try {
    return await fn(standin.url, standin);
  } finally {
    await standin.close();
  }
}

export async function fetchTrustedRoot(url, standin) {
  if (standin) return standin.trustedRoot();
  const res = await fetch(`${url}/trusted_root.json`);
  if (!res.ok) throw new Error(`GET ${url}/trusted_root.json: HTTP ${res.status}`);
  return res.json();
}

// Sign `artifact` ({data, type?}) with `Builder` (MessageSignatureBundleBuilder
// or DSSEBundleBuilder) against the stand-in at `url`.
export async function buildBundle(Builder, artifact, v, url, builderOptions = {}) {
  const token = identityToken(v.subject, v.issuer, v.claims);
  const offset = v['cert-validity-offset'];
  const signer = new FulcioSigner({
    identityProvider: { getToken: async () => token },
    fulcioBaseURL: offset === undefined ? url : `${url}/clock/${Number(offset)}`,
  });
  const witnesses = [];
  if (v.tlog === 'rekor') {
    witnesses.push(new RekorWitness({ rekorBaseURL: url, ...builderOptions.rekor }));
  }
  if (v.tsa === 'yes') witnesses.push(new TSAWitness({ tsaBaseURL: url }));
  if (v.tsa === 'subsecond') {
    witnesses.push(new TSAWitness({ tsaBaseURL: `${url}/subsecond/api/v1/timestamp` }));
  }
  const builder = new Builder({ signer, witnesses, ...builderOptions.builder });
  return builder.create(artifact);
}

// @sigstore/sign 4.1 makes message-signature bundles v0.2 (the certificate as
// a one-element x509CertificateChain). v0.3 differs only in carrying that
// same certificate as `certificate`; nothing signed changes.
export function toBundleVersion(bundle, version) {
  if (version !== '0.3') return bundle;
  const content = bundle.verificationMaterial.content;
  if (content.$case === 'x509CertificateChain') {
    bundle.verificationMaterial.content = {
      $case: 'certificate',
      certificate: content.x509CertificateChain.certificates[0],
    };
  }
  bundle.mediaType = BUNDLE_V03_MEDIA_TYPE;
  return bundle;
}

// Deliberately tamper with the bundle's (real) transparency-log entry the way
// only a forged entry would differ from the one the log signed.
export function forgeLogEntry(bundle, how) {
  const entry = bundle.verificationMaterial.tlogEntries[0];
  switch (how) {
    case 'index':
      entry.logIndex = (BigInt(entry.logIndex) + 1n).toString();
      break;
    case 'time':
      entry.integratedTime = (BigInt(entry.integratedTime) - 1n).toString();
      break;
    case 'body':
    case 'proof': {
      // Same shape, one field changed: hashedrekord's hash, or intoto's
      // payload hash.
      const body = JSON.parse(entry.canonicalizedBody.toString('utf8'));
      const other = crypto.createHash('sha256').update('forged').digest('hex');
      if (body.spec?.data?.hash) body.spec.data.hash.value = other;
      else if (body.spec?.content?.payloadHash) body.spec.content.payloadHash.value = other;
      else throw new Error(`cannot forge a ${body.kind} entry body`);
      entry.canonicalizedBody = Buffer.from(JSON.stringify(body), 'utf8');
      // proof: also drop the signed entry timestamp (optional in v0.2+
      // bundles), so only the inclusion proof and checkpoint speak for the
      // entry. Needs --tsa for a signing time.
      if (how === 'proof') delete entry.inclusionPromise;
      break;
    }
  }
  return bundle;
}

export async function writeOutputs(bundle, v, url, standin) {
  const root = await fetchTrustedRoot(url, standin);
  if (v['other-ca-root']) {
    const other = await otherCACertificate();
    root.certificateAuthorities[0].certChain.certificates = [
      { rawBytes: other.toString('base64') },
    ];
  }
  fs.writeFileSync(v.out, JSON.stringify(bundleToJSON(bundle), null, 2) + '\n');
  fs.writeFileSync(v['trusted-root-out'], JSON.stringify(root, null, 2) + '\n');
}

// A one-line JSON summary of what was made, for scripts.
export function summary(bundle, extra) {
  const vm = bundle.verificationMaterial;
  const certDer =
    vm.content.$case === 'certificate'
      ? vm.content.certificate.rawBytes
      : vm.content.x509CertificateChain.certificates[0].rawBytes;
  const cert = new crypto.X509Certificate(certDer);
  return {
    ...extra,
    mediaType: bundle.mediaType,
    certificate: {
      subjectAltName: cert.subjectAltName,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(cert.validTo).toISOString(),
    },
    tlogEntries: vm.tlogEntries.map((e) => ({
      logIndex: e.logIndex,
      integratedTime: new Date(Number(e.integratedTime) * 1000).toISOString(),
      kind: `${e.kindVersion.kind}/${e.kindVersion.version}`,
    })),
    rfc3161Timestamps: vm.timestampVerificationData?.rfc3161Timestamps?.length ?? 0,
  };
}

export async function main(run) {
  try {
    await run(process.argv.slice(2));
    process.exit(0);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof Failure) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`error: ${e.stack || e}\n`);
    if (e.cause) process.stderr.write(`cause: ${e.cause.stack || e.cause}\n`);
    process.exit(1);
  }
}
