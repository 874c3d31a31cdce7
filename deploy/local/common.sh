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

# A command the tests need, from a Debian package: installed once when missing (apt-get, as
# root or with sudo; CI runs this as root), a no-op afterwards.
ensure_debian_command() { # command package why
  local command="$1" package="$2" why="$3" sudo="" log
  command -v "$command" >/dev/null 2>&1 && return 0
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || {
      say "$command is missing: as root, run apt-get install --no-install-recommends $package"
      exit 1
    }
    sudo="sudo"
  fi
  say "installing $command (Debian package $package) for $why"
  log="$(mktemp)"
  if ! $sudo env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $package" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "could not install $package (apt-get failed, output above)"
    exit 1
  fi
  rm -f "$log"
  command -v "$command" >/dev/null 2>&1 || { say "$command is not on PATH after installing it"; exit 1; }
}

# The browser end-to-end tests drive Debian's Chromium (Playwright never downloads a browser
# here).
ensure_chromium() { ensure_debian_command chromium chromium "the browser end-to-end tests"; }

# The alert rules are checked and unit-tested by promtool, from Debian's prometheus package
# (only promtool is used; the package's server is not started).
ensure_promtool() { ensure_debian_command promtool prometheus "the alert rules' tests"; }

# The pids of a service started from this checkout, found by its command line (not only
# the pid file: a crashed `make up` may have left one behind, and a pid can be reused).
service_pids() { # module
  pgrep -f "^$REPO_ROOT/.venv/bin/python[0-9.]* -m $1\$" || true
}
