#!/usr/bin/env bash
# Installs the Python packages of make_attestation.py (requirements.txt), only
# when they are missing or at other versions. Idempotent; needs only PyPI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
exec bash "$here/../pip-install.sh" "$here/requirements.txt" \
  cryptography.hazmat.primitives.serialization securesystemslib.dsse securesystemslib.signer
