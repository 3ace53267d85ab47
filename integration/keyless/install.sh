#!/usr/bin/env bash
# Installs the pinned npm packages of the keyless stand-in (package-lock.json)
# into integration/keyless/node_modules, only when they are missing or the
# lockfile changed since the last install. Idempotent; needs only the npm
# registry, and Node.js ^20.17.0 or >=22.9.0.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
cd "$here"

command -v node >/dev/null || {
  echo "keyless: Node.js ^20.17.0 or >=22.9.0 is needed and was not found" >&2
  exit 1
}
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (!((maj === 20 && min >= 17) || (maj === 22 && min >= 9) || maj > 22)) {
    console.error(`keyless: Node.js ${process.versions.node} is too old (want ^20.17.0 or >=22.9.0)`);
    process.exit(1);
  }'

stamp=node_modules/.portcullis-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]] &&
  node -e 'import("@sigstore/sign").then(() => import("@sigstore/mock"))' 2>/dev/null; then
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" >"$stamp"
