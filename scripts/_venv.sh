# Shared by the Quick start scripts: find Python 3.11+, create .venv, install the project into it once.
# usage: . scripts/_venv.sh EXTRAS   (EXTRAS: "" or "[test]")
# The install is redone only when pyproject.toml changes or new extras are asked for: the code itself is
# installed in editable mode, so edits need no reinstall.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11 or newer is needed; install it or set PYTHON=/path/to/python3.11" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(find_python)" -m venv .venv
fi
extras="${1:-}"
# One stamp per set of extras, holding the pyproject.toml it was installed from.
stamp=".venv/.installed${extras:+-${extras//[^a-z,]/}}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
installed() { [ -f "$1" ] && [ "$(cat "$1")" = "$wanted" ]; }
# The test extras include everything the plain install has.
if ! installed "$stamp" && ! { [ -z "$extras" ] && installed .venv/.installed-test; }; then
  echo "Installing ketamine-evidence${extras} into .venv (once; again only when pyproject.toml changes)..." >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # PYTHONWARNINGS reaches setuptools' build process: its notices about editable installs are not the
  # user's concern, and a failed install still prints pip's error.
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
  echo "$wanted" >"$stamp"
fi
