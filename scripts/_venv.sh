# Sourced by scripts/test and scripts/demo: make (or reuse) the project's virtualenv and
# install the project with the given extras into it. Re-installs only when pyproject.toml
# changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${N3_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "n3_notebook needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
n3_install() {
    local extras="$1"
    local stamp="$VENV/.n3-installed-$extras"
    local sum
    sum="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
        echo "==> installing n3_notebook[$extras] into $VENV"
        "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
        echo "$sum" > "$stamp"
    fi
}
