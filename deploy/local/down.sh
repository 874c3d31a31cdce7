#!/usr/bin/env bash
# Stops the services started by up.sh, then Kafka and PostgreSQL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for pid_file in "$LOCAL_DIR"/run/*.pid; do
  [[ -f "$pid_file" ]] || continue
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    # `uv run` passes SIGTERM on to the service, which drains its consumers and exits.
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "$(basename "$pid_file" .pid) stopped"
  fi
  rm -f "$pid_file"
done
"$INFRA" down
