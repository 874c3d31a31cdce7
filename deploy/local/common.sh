# Sourced by up.sh, down.sh and test.sh: repo paths and a uv that is there on a fresh machine.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${HELPDESK_LOCAL_DIR:-$REPO_ROOT/.local}"
INFRA="$REPO_ROOT/deploy/local/infra.sh"
export PATH="$HOME/.local/bin:$PATH"

say() { echo "helpdesk: $*" >&2; }

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    say "installing uv (the Python package manager) from PyPI"
    python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  fi
  command -v uv >/dev/null 2>&1 || { say "uv is not on PATH after installing it"; exit 1; }
}

sync_python() {
  ensure_uv
  (cd "$REPO_ROOT" && uv sync --frozen --quiet)
}
