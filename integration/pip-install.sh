#!/usr/bin/env bash
# pip-install.sh REQUIREMENTS [MODULE...]: installs the pinned PyPI packages of
# a test tool, only if importing them at the pinned versions fails (and the
# named modules do not import). Idempotent; needs only PyPI. Uses $PYTHON
# (default python3), the interpreter the tests run the tools with.
set -euo pipefail
req=${1:?usage: pip-install.sh REQUIREMENTS [MODULE...]}
shift
python=${PYTHON:-python3}

check() {
  "$python" - "$req" "$@" <<'PY'
import importlib
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
for module in sys.argv[2:]:
    importlib.import_module(module)
PY
}

if check "$@" 2>/dev/null; then
  exit 0
fi

log=$(mktemp "${TMPDIR:-/tmp}/pip-install.XXXXXX")
trap 'rm -f "$log"' EXIT
pip_install() {
  "$python" -m pip install --quiet --disable-pip-version-check \
    --root-user-action=ignore -r "$req" "$@"
}
# A Debian-managed interpreter refuses plain installs (PEP 668).
if ! pip_install 2>"$log"; then
  if grep -q externally-managed "$log"; then
    pip_install --break-system-packages
  else
    cat "$log" >&2
    exit 1
  fi
fi
check "$@"
