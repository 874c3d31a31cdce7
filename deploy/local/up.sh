#!/usr/bin/env bash
# Sets everything up and runs the system: Kafka, PostgreSQL and the services, ready for requests.
# Idempotent: what already runs is left running. Stop it all with deploy/local/down.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TICKETING_PORT="${HELPDESK_TICKETING_PORT:-8001}"
RUN_DIR="$LOCAL_DIR/run"
LOG_DIR="$LOCAL_DIR/logs"
mkdir -p "$RUN_DIR" "$LOG_DIR"

sync_python
"$INFRA" up
eval "$("$INFRA" env)"

create_database() {
  local name="$1"
  if [[ -z "$(psql "$DATABASE_ADMIN_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]]; then
    psql "$DATABASE_ADMIN_URL" -qc "CREATE DATABASE \"$name\""
    say "database $name created"
  fi
}

start_service() { # name port module
  local name="$1" port="$2" module="$3" pid_file="$RUN_DIR/$1.pid"
  if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    say "$name already running (pid $(cat "$pid_file"))"
    return
  fi
  create_database "$name"
  (
    cd "$REPO_ROOT"
    DATABASE_URL="${DATABASE_ADMIN_URL%/*}/$name" \
      KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
      HTTP_PORT="$port" LOG_FORMAT=json \
      nohup uv run --frozen python -m "$module" >>"$LOG_DIR/$name.log" 2>&1 &
    echo $! >"$pid_file"
  )
  say "$name starting (pid $(cat "$pid_file"), log $LOG_DIR/$name.log)"
}

wait_ready() { # name port
  local name="$1" port="$2" deadline=$((SECONDS + 90))
  until curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; do
    if ((SECONDS > deadline)) || ! kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
      say "$name did not become ready; last lines of its log:"
      tail -n 30 "$LOG_DIR/$name.log" >&2
      exit 1
    fi
    sleep 0.5
  done
}

start_service ticketing "$TICKETING_PORT" ticketing
wait_ready ticketing "$TICKETING_PORT"
# A demo tenant, so the README's examples work; real tenants are provisioned the same way.
(cd "$REPO_ROOT" && DATABASE_URL="${DATABASE_ADMIN_URL%/*}/ticketing" LOG_FORMAT=json \
  uv run --frozen python -m ticketing tenants add acme --name "Acme (demo)" >/dev/null 2>&1)

cat <<MSG

The helpdesk is up.
  Ticketing API      http://127.0.0.1:$TICKETING_PORT
  OpenAPI (try it)   http://127.0.0.1:$TICKETING_PORT/docs
  Kafka              $KAFKA_BOOTSTRAP_SERVERS
  PostgreSQL         ${DATABASE_ADMIN_URL%/*}/ticketing
  Logs               $LOG_DIR/
Stop everything with: make down
MSG
