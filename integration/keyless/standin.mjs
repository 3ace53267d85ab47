#!/usr/bin/env node
// Serve the local Sigstore stand-in (mock Fulcio, Rekor and TSA from
// @sigstore/mock) on 127.0.0.1 until SIGTERM or SIGINT, so that several
// signing runs share one set of authorities and one trusted root.
//
//   node standin.mjs [--port N] [--keys-dir DIR]
//                    [--trusted-root-out FILE] [--url-file FILE] [--log]
//
// Prints the base URL (http://127.0.0.1:PORT) on stdout once listening, and
// writes it to --url-file (written last: its presence means "ready").
// Pass that URL to sign-image.mjs / sign-attestation.mjs as --standin-url.

import fs from 'node:fs';
import { parseArgs } from 'node:util';

import { loadKeys, startStandin } from './lib/standin.mjs';

const USAGE =
  'usage: node standin.mjs [--port N] [--keys-dir DIR] [--trusted-root-out FILE] [--url-file FILE] [--log]';

let v;
try {
  ({ values: v } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'keys-dir': { type: 'string' },
      'trusted-root-out': { type: 'string' },
      'url-file': { type: 'string' },
      log: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (e) {
  process.stderr.write(`${e.message}\n${USAGE}\n`);
  process.exit(2);
}
if (v.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!/^\d+$/.test(v.port) || Number(v.port) > 65535) {
  process.stderr.write(`--port must be a TCP port number\n${USAGE}\n`);
  process.exit(2);
}

const standin = await startStandin({
  keys: loadKeys(v['keys-dir']),
  port: Number(v.port),
  log: v.log ? (line) => process.stderr.write(`standin: ${line}\n`) : undefined,
});

if (v['trusted-root-out']) {
  fs.writeFileSync(v['trusted-root-out'], JSON.stringify(standin.trustedRoot(), null, 2) + '\n');
}
if (v['url-file']) {
  const tmp = `${v['url-file']}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, `${standin.url}\n`);
  fs.renameSync(tmp, v['url-file']);
}
process.stdout.write(`${standin.url}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await standin.close();
  if (v['url-file']) fs.rmSync(v['url-file'], { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
