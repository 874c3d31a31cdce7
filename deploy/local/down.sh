#!/usr/bin/env bash
# Stops the services started by up.sh, then Kafka and PostgreSQL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stop_pid() { # name pid
  local name="$1" pid="$2"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" # the service drains its consumers, finishes its jobs' pass and exits
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  say "$name stopped (pid $pid)"
}

for pid_file in "$LOCAL_DIR"/run/*.pid; do
  [[ -f "$pid_file" ]] || continue
  name="$(basename "$pid_file" .pid)"
  # The pid file, and any instance of the service the file does not name (an orphan).
  for pid in $(cat "$pid_file") $(service_pids "$name"); do
    stop_pid "$name" "$pid"
  done
  rm -f "$pid_file"
done
"$INFRA" down
