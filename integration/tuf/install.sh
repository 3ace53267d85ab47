#!/usr/bin/env bash
# Installs the Python packages of make_repo.py (requirements.txt), only
# if importing them at the pinned versions fails. Idempotent; needs only PyPI.
# Uses $PYTHON (default python3), the interpreter the tests run the tool with.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
python=${PYTHON:-python3}

check() {
  "$python" - "$here/requirements.txt" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(f"{name} is not installed")
    if have != want:
        sys.exit(f"{name} {have} is installed, want {want}")

import cryptography.hazmat.primitives.serialization  # noqa: E402,F401
from securesystemslib.signer import CryptoSigner, SSlibKey  # noqa: E402,F401
from tuf.api.metadata import Metadata  # noqa: E402,F401
PY
}

if check 2>/dev/null; then
  exit 0
fi

pip_install() {
  "$python" -m pip install --quiet --disable-pip-version-check \
    --root-user-action=ignore -r "$here/requirements.txt" "$@"
}
# A Debian-managed interpreter refuses plain installs (PEP 668).
if ! pip_install 2>"${TMPDIR:-/tmp}/tuf-pip.$$"; then
  if grep -q externally-managed "${TMPDIR:-/tmp}/tuf-pip.$$"; then
    rm -f "${TMPDIR:-/tmp}/tuf-pip.$$"
    pip_install --break-system-packages
  else
    cat "${TMPDIR:-/tmp}/tuf-pip.$$" >&2
    rm -f "${TMPDIR:-/tmp}/tuf-pip.$$"
    exit 1
  fi
fi
rm -f "${TMPDIR:-/tmp}/tuf-pip.$$"
check
