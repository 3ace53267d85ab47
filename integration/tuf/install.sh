#!/usr/bin/env bash
# Installs the Python packages of make_repo.py (requirements.txt), only when
# they are missing or at other versions. Idempotent; needs only PyPI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
exec bash "$here/../pip-install.sh" "$here/requirements.txt" \
  securesystemslib.signer tuf.api.metadata
