// A local Sigstore stand-in: @sigstore/mock's Fulcio, Rekor and TSA handlers
// served over HTTP on 127.0.0.1, plus the trusted root that names their keys.
//
// Everything cryptographic (certificates, SCTs, signed entry timestamps,
// checkpoints, inclusion proofs, RFC 3161 timestamps) is @sigstore/mock's.
// This file only generates the keys, routes requests to the handlers and
// describes the resulting authorities in Sigstore's trusted-root format.
//
// Routes (all POST bodies are JSON, as the real services take them):
//   POST /api/v2/signingCert                  Fulcio (mock CA, SCT embedded)
//   POST /clock/<seconds>/api/v2/signingCert  Fulcio whose clock runs <seconds>
//                                             off: certificates valid for 10
//                                             minutes from now+<seconds> (same
//                                             CA key and name, same CT log key)
//   POST /api/v1/log/entries                  Rekor v1
//   POST /api/v1/timestamp                    timestamp authority (genTime
//                                             on a whole second)
//   POST /subsecond/api/v1/timestamp          the same TSA, genTime with
//                                             milliseconds (valid RFC 3161)
//   GET  /trusted_root.json                   the trusted root for the above
//   GET  /healthz                             "ok"

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import {
  fulcioHandler,
  initializeCA,
  initializeCTLog,
  initializeTLog,
  initializeTSA,
  rekorHandler,
  tsaHandler,
} from '@sigstore/mock';
import { TrustedRoot } from '@sigstore/protobuf-specs';

export const TRUSTED_ROOT_MEDIA_TYPE =
  'application/vnd.dev.sigstore.trustedroot+json;version=0.1';

// protobuf-specs enum values (sigstore_common.proto).
const HASH_SHA2_256 = 1; // HashAlgorithm.SHA2_256
const PKIX_ECDSA_P256_SHA_256 = 5; // PublicKeyDetails.PKIX_ECDSA_P256_SHA_256

const MAX_BODY = 16 * 1024 * 1024;
const KEY_NAMES = ['fulcio-ca', 'ctlog', 'rekor', 'tsa'];

function newKeyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

// Keys for the four authorities: fresh ones, or PEM files kept in keysDir
// (created on first use) so that several runs share the same keys.
export function loadKeys(keysDir) {
  const keys = {};
  if (keysDir) fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  for (const name of KEY_NAMES) {
    if (!keysDir) {
      keys[name] = newKeyPair();
      continue;
    }
    const file = path.join(keysDir, `${name}.key.pem`);
    let privateKey;
    if (fs.existsSync(file)) {
      privateKey = crypto.createPrivateKey(fs.readFileSync(file));
    } else {
      const pair = newKeyPair();
      fs.writeFileSync(
        file,
        pair.privateKey.export({ format: 'pem', type: 'pkcs8' }),
        { mode: 0o600 }
      );
      privateKey = pair.privateKey;
    }
    keys[name] = { privateKey, publicKey: crypto.createPublicKey(privateKey) };
  }
  return keys;
}

function spkiDer(keyObject) {
  return keyObject.export({ format: 'der', type: 'spki' });
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest();
}

// A trusted-root "validFor.start" a little before `date`, on a whole second:
// Rekor integrated times are whole seconds, and a log key must be valid at
// the integrated time of every entry it signed.
function validStart(date) {
  return new Date(Math.floor(date.getTime() / 1000) * 1000 - 60_000);
}

// Start a stand-in. Options:
//   keys      from loadKeys() (default: fresh keys)
//   port      TCP port on 127.0.0.1 (default 0: an ephemeral port)
// Returns { url, trustedRoot(), close(), ... }.
export async function startStandin(options = {}) {
  const keys = options.keys || loadKeys();
  const started = new Date();

  const ctlog = await initializeCTLog(keys.ctlog);
  const ca = await initializeCA(keys['fulcio-ca'], ctlog);
  // The TSA's clock is a Date this file sets before each request: to the
  // current time on a whole second (see README: sigstore-verify's DER decoder
  // refuses GeneralizedTime with fractional seconds, which the mock otherwise
  // writes), or to the exact current time on the /subsecond route.
  const tsaClock = new Date();
  const tsa = await initializeTSA(keys.tsa, tsaClock);

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port || 0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;

  // The mock's Rekor uses its URL's host as the checkpoint origin.
  const tlog = await initializeTLog(url, keys.rekor);

  const fulcio = fulcioHandler(ca);
  const rekor = rekorHandler(tlog);
  const timestamp = tsaHandler(tsa);

  // Fulcio with a shifted clock: a CA object with the same key and name (so
  // its certificates chain to the trusted root's CA certificate) whose
  // certificates and SCTs carry now+offset as their time.
  async function shiftedFulcio(offsetSeconds) {
    const clock = new Date(Date.now() + offsetSeconds * 1000);
    const shiftedCT = await initializeCTLog(keys.ctlog, clock);
    const shiftedCA = await initializeCA(keys['fulcio-ca'], shiftedCT, clock);
    return fulcioHandler(shiftedCA);
  }

  const trustedRootJSON = TrustedRoot.toJSON({
    mediaType: TRUSTED_ROOT_MEDIA_TYPE,
    tlogs: [
      {
        baseUrl: url,
        hashAlgorithm: HASH_SHA2_256,
        publicKey: {
          rawBytes: tlog.publicKey,
          keyDetails: PKIX_ECDSA_P256_SHA_256,
          validFor: { start: validStart(started), end: undefined },
        },
        logId: { keyId: sha256(tlog.publicKey) },
        checkpointKeyId: undefined,
        operator: 'portcullis-keyless-standin',
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: url,
        certChain: { certificates: [{ rawBytes: ca.rootCertificate }] },
        validFor: { start: validStart(started), end: undefined },
        operator: 'portcullis-keyless-standin',
      },
    ],
    ctlogs: [
      {
        baseUrl: url,
        hashAlgorithm: HASH_SHA2_256,
        publicKey: {
          rawBytes: ctlog.publicKey,
          keyDetails: PKIX_ECDSA_P256_SHA_256,
          validFor: { start: validStart(started), end: undefined },
        },
        logId: { keyId: ctlog.logID },
        checkpointKeyId: undefined,
        operator: 'portcullis-keyless-standin',
      },
    ],
    timestampAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'tsa' },
        uri: url,
        // Leaf (the timestamp signer) first, then its root.
        certChain: {
          certificates: [
            { rawBytes: tsa.intCertificate },
            { rawBytes: tsa.rootCertificate },
          ],
        },
        validFor: { start: validStart(started), end: undefined },
        operator: 'portcullis-keyless-standin',
      },
    ],
  });

  server.on('request', (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end('request body too large');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', async () => {
      try {
        const body = Buffer.concat(chunks).toString('utf8');
        const route = req.url.split('?')[0];
        let handler;
        if (req.method === 'GET' && route === '/trusted_root.json') {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(trustedRootJSON, null, 2) + '\n');
          return;
        }
        if (req.method === 'GET' && route === '/healthz') {
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
          return;
        }
        const shifted = /^\/clock\/(-?\d+)(\/api\/v2\/signingCert)$/.exec(route);
        if (req.method !== 'POST') {
          handler = undefined;
        } else if (route === fulcio.path) {
          handler = fulcio;
        } else if (shifted) {
          handler = await shiftedFulcio(Number(shifted[1]));
        } else if (route === rekor.path) {
          handler = rekor;
        } else if (route === timestamp.path) {
          tsaClock.setTime(Math.floor(Date.now() / 1000) * 1000);
          handler = timestamp;
        } else if (route === `/subsecond${timestamp.path}`) {
          // (a whole second would have no fraction: step 1 ms past it)
          tsaClock.setTime(Date.now() % 1000 ? Date.now() : Date.now() + 1);
          handler = timestamp;
        }
        if (!handler) {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
          return;
        }
        const { statusCode, response, contentType } = await handler.fn(body);
        if (options.log) options.log(`${req.method} ${route} -> ${statusCode}`);
        res.writeHead(statusCode, { 'Content-Type': contentType || 'text/plain' });
        res.end(response);
      } catch (e) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e));
      }
    });
  });

  return {
    url,
    port,
    started,
    trustedRoot: () => structuredClone(trustedRootJSON),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// A second, unrelated mock CA (fresh key, same subject name as the stand-in's
// CA): its certificate in a trusted root is a CA that did NOT issue the
// stand-in's certificates.
export async function otherCACertificate() {
  const pair = newKeyPair();
  const ctlog = await initializeCTLog(pair);
  const ca = await initializeCA(pair, ctlog);
  return ca.rootCertificate;
}
