#!/usr/bin/env bash
# Sets everything up and runs the system: Kafka, PostgreSQL and the services, ready for requests.
# Idempotent: what already runs is left running. Stop it all with deploy/local/down.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TICKETING_PORT="${HELPDESK_TICKETING_PORT:-8001}"
SLA_PORT="${HELPDESK_SLA_PORT:-8002}"
NOTIFICATIONS_PORT="${HELPDESK_NOTIFICATIONS_PORT:-8003}"
FEEDBACK_PORT="${HELPDESK_FEEDBACK_PORT:-8004}"
MAIL_PORT="${HELPDESK_MAIL_PORT:-1025}"
MAIL_DIR="$LOCAL_DIR/mail"
RUN_DIR="$LOCAL_DIR/run"
LOG_DIR="$LOCAL_DIR/logs"
mkdir -p "$RUN_DIR" "$LOG_DIR"

sync_python
"$INFRA" up
eval "$("$INFRA" env)"

# Each service has a database of its own, owned by a login role of its own that is not
# a superuser and does not bypass row-level security: it can create its tables, and
# nothing else in the cluster. A database made
# by an earlier version of this script (owned by the admin) is handed over to its role.
create_database() { # name
  local name="$1"
  psql "$DATABASE_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 <<SQL
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', '$name')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$name', '$name')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$name') \gexec
ALTER DATABASE "$name" OWNER TO "$name";
SQL
  psql "${DATABASE_ADMIN_URL%/*}/$name" -qAt -v ON_ERROR_STOP=1 <<SQL
SELECT format('ALTER TABLE public.%I OWNER TO %I', tablename, '$name')
FROM pg_tables WHERE schemaname = 'public' AND tableowner <> '$name' \gexec
SQL
  # A database made before infra.sh marked these in template1 (row-level security's indexes).
  psql "${DATABASE_ADMIN_URL%/*}/$name" -qAt -v ON_ERROR_STOP=1 \
    -f "$REPO_ROOT/deploy/postgres/leakproof.sql" >/dev/null
}

service_url() { # name: the service's own role on its own database
  local admin="${DATABASE_ADMIN_URL%/*}"
  echo "postgresql://$1@${admin#*@}/$1"
}

start_service() { # name port module
  local name="$1" port="$2" module="$3" pid_file="$RUN_DIR/$1.pid" running
  running="$(service_pids "$module" | head -n 1)"
  if [[ -n "$running" ]]; then
    echo "$running" >"$pid_file"
    say "$name already running (pid $running)"
    return
  fi
  if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
    say "port $port is taken by another program; set HELPDESK_${name^^}_PORT to another port"
    exit 1
  fi
  create_database "$name"
  (
    cd "$REPO_ROOT"
    # The venv's python itself, not `uv run`: the pid file then names the service, so a
    # signal reaches it and a crash is seen (uv would stay behind as a wrapper).
    DATABASE_URL="$(service_url "$name")" \
      KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
      HTTP_PORT="$port" LOG_FORMAT=json SMTP_PORT="$MAIL_PORT" \
      TICKETING_URL="http://127.0.0.1:$TICKETING_PORT" \
      nohup "$REPO_ROOT/.venv/bin/python" -m "$module" >>"$LOG_DIR/$name.log" 2>&1 &
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

# A local SMTP server standing for the mail provider: every mail the notifications service
# sends lands in $MAIL_DIR as an .eml file.
start_mailcatcher() {
  local pid_file="$RUN_DIR/mailcatcher.pid"
  if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    say "mail catcher already running (pid $(cat "$pid_file"))"
    return
  fi
  mkdir -p "$MAIL_DIR"
  (
    cd "$REPO_ROOT"
    nohup "$REPO_ROOT/.venv/bin/python" -m notifications.mailcatcher --port "$MAIL_PORT" \
      --dir "$MAIL_DIR" >>"$LOG_DIR/mailcatcher.log" 2>&1 &
    echo $! >"$pid_file"
  )
  say "mail catcher starting (smtp://127.0.0.1:$MAIL_PORT, mail kept in $MAIL_DIR)"
}

start_mailcatcher
start_service ticketing "$TICKETING_PORT" ticketing
start_service sla "$SLA_PORT" sla
start_service notifications "$NOTIFICATIONS_PORT" notifications
start_service feedback "$FEEDBACK_PORT" feedback
wait_ready ticketing "$TICKETING_PORT"
wait_ready sla "$SLA_PORT"
wait_ready notifications "$NOTIFICATIONS_PORT"
wait_ready feedback "$FEEDBACK_PORT"
# A demo tenant, so the README's examples work; real tenants are provisioned the same way.
(cd "$REPO_ROOT" && DATABASE_URL="$(service_url ticketing)" LOG_FORMAT=json \
  uv run --frozen python -m ticketing tenants add acme --name "Acme (demo)" >/dev/null 2>&1)

cat <<MSG

The helpdesk is up.
  Ticketing API      http://127.0.0.1:$TICKETING_PORT
  OpenAPI (try it)   http://127.0.0.1:$TICKETING_PORT/docs
  SLA API            http://127.0.0.1:$SLA_PORT  (OpenAPI at /docs)
  Notifications API  http://127.0.0.1:$NOTIFICATIONS_PORT  (OpenAPI at /docs)
  Feedback API       http://127.0.0.1:$FEEDBACK_PORT  (OpenAPI at /docs; survey pages at /surveys/...)
  Mail sent          $MAIL_DIR/*.eml  (the local mail catcher, smtp://127.0.0.1:$MAIL_PORT)
  Kafka              $KAFKA_BOOTSTRAP_SERVERS
  PostgreSQL         $(service_url ticketing)  (the service's own role)
  Logs               $LOG_DIR/
Stop everything with: make down
MSG
