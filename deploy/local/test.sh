#!/usr/bin/env bash
# Sets up and runs all checks and tests: lint, types, then unit, integration and end-to-end
# tests against the real Kafka broker and PostgreSQL. Servers it started are stopped again.
# Extra arguments go to pytest (e.g. deploy/local/test.sh tests/unit -k ticket).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

# Tests get servers of their own (other ports, other data), apart from what `make up` runs:
# a developer's running system never sees test traffic, and tests never see its backlog.
export HELPDESK_LOCAL_DIR="${HELPDESK_TEST_LOCAL_DIR:-$LOCAL_DIR/test}"
export HELPDESK_KAFKA_PORT="${HELPDESK_TEST_KAFKA_PORT:-29092}"
export HELPDESK_KAFKA_CONTROLLER_PORT="${HELPDESK_TEST_KAFKA_CONTROLLER_PORT:-29093}"
export HELPDESK_KAFKA_SASL_PORT="${HELPDESK_TEST_KAFKA_SASL_PORT:-29094}"
export HELPDESK_PG_PORT="${HELPDESK_TEST_PG_PORT:-25432}"

sync_python
ensure_chromium
export HELPDESK_REQUIRE_BROWSER=1 # the browser tests fail, never skip, without chromium
ensure_promtool
export HELPDESK_REQUIRE_PROMTOOL=1 # the alert rules' tests fail, never skip, without it

say "lint and types"
uv run --frozen ruff check .
uv run --frozen ruff format --check .
uv run --frozen mypy

if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" || -z "${DATABASE_ADMIN_URL:-}" ]]; then
  if ! "$INFRA" status >/dev/null 2>&1; then
    trap '"$INFRA" down' EXIT # stop only what this run started
  fi
  "$INFRA" up
  eval "$("$INFRA" env)"
fi

say "tests (Kafka $KAFKA_BOOTSTRAP_SERVERS)"
uv run --frozen pytest "${@:-tests}"
