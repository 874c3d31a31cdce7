#!/usr/bin/env bash
# Real Apache Kafka (KRaft, single node) and PostgreSQL 15 for local runs and tests, without Docker.
#
#   deploy/local/infra.sh up       fetch, start and wait until both answer (no-op when they do)
#   deploy/local/infra.sh down     stop both
#   deploy/local/infra.sh status   what is running (exit 0 when both answer, 3 otherwise)
#   deploy/local/infra.sh env      export lines for callers: eval "$(deploy/local/infra.sh env)"
#   deploy/local/infra.sh reset    down, then delete the data (the fetched Kafka jars are kept)
#
# Settings (environment):
#   HELPDESK_LOCAL_DIR              state dir (default: <repo>/.local, git-ignored)
#   HELPDESK_KAFKA_PORT             Kafka client port (19092)
#   HELPDESK_KAFKA_CONTROLLER_PORT  KRaft controller port (19093)
#   HELPDESK_KAFKA_SASL_PORT        SASL_PLAINTEXT (SCRAM-SHA-512) client port (Kafka port + 2)
#   HELPDESK_PG_PORT                PostgreSQL port (15432)
#   HELPDESK_KAFKA_HEAP_OPTS        broker heap ("-Xms128m -Xmx512m")
#   HELPDESK_INFRA_TIMEOUT          seconds to wait for each server to answer (120)
#   HELPDESK_PG_BIN_DIR             PostgreSQL server binaries (/usr/lib/postgresql/15/bin)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

LOCAL_DIR="${HELPDESK_LOCAL_DIR:-$REPO_ROOT/.local}"
[[ "$LOCAL_DIR" == /* ]] || LOCAL_DIR="$PWD/$LOCAL_DIR"
KAFKA_PORT="${HELPDESK_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${HELPDESK_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_SASL_PORT="${HELPDESK_KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}"
# The user of the SASL listener (local only, like the services' development secrets).
KAFKA_SCRAM_USER=helpdesk
KAFKA_SCRAM_PASSWORD=helpdesk-local-scram
PG_PORT="${HELPDESK_PG_PORT:-15432}"
KAFKA_HEAP_OPTS="${HELPDESK_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
START_TIMEOUT="${HELPDESK_INFRA_TIMEOUT:-120}"
STOP_TIMEOUT=30
PG_DEFAULT_BIN_DIR=/usr/lib/postgresql/15/bin # Debian's postgresql-15
PG_BIN_DIR="${HELPDESK_PG_BIN_DIR:-$PG_DEFAULT_BIN_DIR}"

PG_ROLE=helpdesk        # superuser role inside the cluster
PG_SYSTEM_USER=helpdesk # OS user that owns and runs the cluster when this script runs as root

KAFKA_SRC="$SCRIPT_DIR/kafka"
KAFKA_DIR="$LOCAL_DIR/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_PID_FILE="$KAFKA_DIR/kafka.pid"
KAFKA_PROBE_DIR="$KAFKA_DIR/probe"
KAFKA_LOG_FILES=("$KAFKA_LOGS/kafka.out" "$KAFKA_LOGS/server.log")
PG_LINK="$LOCAL_DIR/postgres" # a directory, or a symlink to one (see pg_prepare_dir)

log() { echo "infra: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Print the message, the tail of each existing log file, and exit.
fail_with_logs() {
  local message="$1" file
  shift
  log "error: $message"
  for file in "$@"; do
    [[ -s "$file" ]] || continue
    echo "----- last lines of $file -----" >&2
    tail -n 40 "$file" >&2
  done
  exit 1
}

jdk_tool() {
  local tool="${JAVA_HOME:+$JAVA_HOME/bin/}$1"
  command -v "$tool" >/dev/null || die "$1 not found: install a JDK 17 (Debian: openjdk-17-jdk-headless) or set JAVA_HOME"
  echo "$tool"
}

# True when nothing accepts connections on 127.0.0.1:<port>.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Serialises up/down/reset of concurrent callers (parallel test runs) on the same state dir.
take_lock() {
  mkdir -p "$LOCAL_DIR"
  exec 9>"$LOCAL_DIR/.infra.lock"
  flock -w 300 9 || die "another infra.sh is still working on $LOCAL_DIR"
}

# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------

kafka_pid() {
  local pid
  [[ -f "$KAFKA_PID_FILE" ]] || return 1
  pid="$(<"$KAFKA_PID_FILE")"
  # The command line check guards against a stale pid file whose pid was reused.
  [[ "$pid" =~ ^[0-9]+$ ]] && grep -qa 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# One ApiVersions v0 request over bash's /dev/tcp: cheap enough to poll, and it proves the broker
# speaks Kafka on the port rather than that something merely listens there.
kafka_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT"
    # length 15 | api key 18 (ApiVersions) | version 0 | correlation id 7 | client id "infra"
    printf '\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x07\x00\x05infra' >&3
    # reply: length | correlation id 7 | error code 0
    reply="$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')"
    [[ "$reply" =~ ^[0-9a-f]{8}000000070000$ ]]
  ) 2>/dev/null
}

# Jars into $KAFKA_LIBS; refetched only when pom.xml changed. Maven caches them in ~/.m2.
kafka_fetch() {
  local pom="$KAFKA_SRC/pom.xml" want tmp="$KAFKA_DIR/libs.tmp"
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  [[ "$(cat "$KAFKA_LIBS/.pom.sha256" 2>/dev/null)" == "$want" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: maven)"
  log "fetching Kafka jars with Maven (cached in ~/.m2)"
  rm -rf "$tmp"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" \
    >"$KAFKA_LOGS/mvn.log" 2>&1 || fail_with_logs "Maven could not fetch Kafka" "$KAFKA_LOGS/mvn.log"
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS" "$KAFKA_PROBE_DIR"
  mv "$tmp" "$KAFKA_LIBS"
}

kafka_build_probe() {
  local src="$KAFKA_SRC/KafkaProbe.java"
  [[ "$KAFKA_PROBE_DIR/KafkaProbe.class" -nt "$src" ]] && return 0
  rm -rf "$KAFKA_PROBE_DIR"
  "$(jdk_tool javac)" -nowarn -d "$KAFKA_PROBE_DIR" -cp "$KAFKA_LIBS/*" "$src" >"$KAFKA_LOGS/javac.log" 2>&1 ||
    fail_with_logs "could not compile the Kafka probe" "$KAFKA_LOGS/javac.log"
}

kafka_write_config() {
  local text
  text="$(<"$KAFKA_SRC/server.properties.template")"
  text="${text//@KAFKA_PORT@/"$KAFKA_PORT"}"
  text="${text//@CONTROLLER_PORT@/"$KAFKA_CONTROLLER_PORT"}"
  text="${text//@SASL_PORT@/"$KAFKA_SASL_PORT"}"
  text="${text//@DATA_DIR@/"$KAFKA_DATA"}"
  printf '%s\n' "$text" >"$KAFKA_CONF"
}

# 16 random bytes, URL-safe base64 without padding; Kafka's own ids never start with '-'.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [[ "$id" == -* ]] || break
  done
  echo "$id"
}

# A short-lived JVM on the Kafka classpath (storage tool, probe), logging to a file of its own.
kafka_tool() {
  local logfile="$1" classpath="$2"
  shift 2
  "$(jdk_tool java)" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$classpath" \
    -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.xml" -Dkafka.logs.dir="$KAFKA_LOGS" \
    -Dhelpdesk.log.file="$logfile" -Dhelpdesk.log.level=WARN "$@"
}

kafka_format() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local id
  id="$(new_cluster_id)"
  log "formatting Kafka storage (cluster id $id)"
  kafka_tool tools.log "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$id" -c "$KAFKA_CONF" \
    >"$KAFKA_LOGS/format.log" 2>&1 || fail_with_logs "Kafka storage format failed" "$KAFKA_LOGS/format.log"
}

kafka_start() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT"; do
    port_free "$port" || die "port $port is taken by another process (set HELPDESK_KAFKA_PORT / HELPDESK_KAFKA_CONTROLLER_PORT / HELPDESK_KAFKA_SASL_PORT)"
  done
  kafka_fetch
  kafka_build_probe
  kafka_write_config
  kafka_format
  log "starting Kafka on 127.0.0.1:$KAFKA_PORT"
  local java
  java="$(jdk_tool java)"
  # JVM options as Kafka's own kafka-run-class.sh sets them, with a small heap.
  # setsid: the broker outlives this script and does not get the caller's Ctrl-C or hangup.
  # shellcheck disable=SC2086,SC2016
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID_FILE" \
    "$java" -server $KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.xml" -Dkafka.logs.dir="$KAFKA_LOGS" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" \
    </dev/null >"$KAFKA_LOGS/kafka.out" 2>&1 9>&- &
  local tries
  for ((tries = 0; tries < 50; tries++)); do
    [[ -s "$KAFKA_PID_FILE" ]] && return 0
    sleep 0.1
  done
  fail_with_logs "Kafka did not start" "$KAFKA_LOGS/kafka.out"
}

# Returns 0 once the broker answers ApiVersions, 1 if its process is gone; fails on timeout.
kafka_wait() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until kafka_answers; do
    kafka_pid >/dev/null || return 1
    ((SECONDS < deadline)) ||
      fail_with_logs "Kafka did not answer on 127.0.0.1:$KAFKA_PORT within ${START_TIMEOUT}s (still running: infra.sh down stops it)" "${KAFKA_LOG_FILES[@]}"
    sleep 0.2
  done
}

# A real client: cluster metadata, topics, and the group coordinator; and the SASL user.
kafka_probe() {
  kafka_tool probe.log "$KAFKA_PROBE_DIR:$KAFKA_LIBS/*" KafkaProbe "127.0.0.1:$KAFKA_PORT" "$START_TIMEOUT" \
    "$KAFKA_SCRAM_USER" "$KAFKA_SCRAM_PASSWORD" \
    >"$KAFKA_LOGS/probe.out" 2>&1 ||
    fail_with_logs "Kafka answers ApiVersions but not an admin client" "$KAFKA_LOGS/probe.out" "${KAFKA_LOG_FILES[@]}"
  log "$(cat "$KAFKA_LOGS/probe.out")"
}

# Starts Kafka in the background unless it runs already; kafka_finish_up waits for it, so that
# PostgreSQL can start meanwhile.
KAFKA_STARTED=0
kafka_begin_up() {
  kafka_pid >/dev/null && return 0
  rm -f "$KAFKA_PID_FILE" # stale: its process is gone
  kafka_start
  KAFKA_STARTED=1
}

kafka_finish_up() {
  if ((!KAFKA_STARTED)); then
    kafka_answers && return 0
    log "Kafka is running but does not answer yet; waiting"
    if ! kafka_wait; then
      log "Kafka stopped meanwhile; starting it again"
      kafka_start
    fi
  fi
  kafka_wait || fail_with_logs "Kafka exited during startup" "${KAFKA_LOG_FILES[@]}"
  kafka_probe
}

# SIGTERM (Kafka shuts down cleanly), then SIGKILL after $STOP_TIMEOUT seconds.
kafka_down() {
  local pid deadline
  if pid="$(kafka_pid)"; then
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kafka_pid >/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kafka_pid >/dev/null; then
      log "Kafka did not stop within ${STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while kafka_pid >/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$KAFKA_PID_FILE"
}

kafka_status() {
  local pid
  if ! pid="$(kafka_pid)"; then
    echo "kafka:    stopped"
    return 1
  fi
  if kafka_answers; then
    echo "kafka:    running (pid $pid), answers on 127.0.0.1:$KAFKA_PORT"
  else
    echo "kafka:    running (pid $pid), NOT answering on 127.0.0.1:$KAFKA_PORT"
    return 1
  fi
}

# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

# PostgreSQL refuses to run as root: then it runs as $PG_SYSTEM_USER.
as_pg_user() {
  if ((EUID == 0)); then
    (cd / && runuser -u "$PG_SYSTEM_USER" -- "$@")
  else
    "$@"
  fi
}

apt_install_postgresql() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15
}

pg_ensure_binaries() {
  [[ -x "$PG_BIN_DIR/postgres" ]] && return 0
  if ((EUID == 0)) && [[ "$PG_BIN_DIR" == "$PG_DEFAULT_BIN_DIR" ]] && command -v apt-get >/dev/null; then
    log "PostgreSQL 15 not found; installing postgresql-15 with apt-get"
    mkdir -p "$LOCAL_DIR"
    {
      apt_install_postgresql || { apt-get update -q && apt_install_postgresql; }
    } >"$LOCAL_DIR/apt.log" 2>&1 || fail_with_logs "apt-get install postgresql-15 failed" "$LOCAL_DIR/apt.log"
  fi
  [[ -x "$PG_BIN_DIR/postgres" ]] ||
    die "PostgreSQL 15 server binaries not found in $PG_BIN_DIR: install Debian's postgresql-15 (as root: apt-get install postgresql-15) or set HELPDESK_PG_BIN_DIR"
}

pg_ensure_system_user() {
  ((EUID == 0)) || return 0
  id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_SYSTEM_USER to run PostgreSQL"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_SYSTEM_USER"
}

# The cluster's directory, once pg_prepare_dir made it (empty when there is none).
pg_dir() {
  if [[ -e "$PG_LINK" ]]; then readlink -f "$PG_LINK"; fi
}

# The OS user running PostgreSQL must reach its directory. When root runs this in a checkout
# under a private directory (/root is 0700), the cluster lives in /var/tmp instead, behind a
# symlink at $PG_LINK so that logs, `reset` and this script find it in one place.
pg_prepare_dir() {
  [[ -e "$PG_LINK" ]] && return 0
  rm -f "$PG_LINK" # a symlink whose target was deleted
  mkdir -p "$PG_LINK"
  ((EUID == 0)) || return 0
  chown "$PG_SYSTEM_USER:" "$PG_LINK"
  as_pg_user test -w "$PG_LINK" && return 0
  local elsewhere
  elsewhere="/var/tmp/helpdesk-postgres-$(printf '%s' "$LOCAL_DIR" | sha256sum | cut -c1-12)"
  log "user $PG_SYSTEM_USER cannot reach $LOCAL_DIR; the PostgreSQL cluster goes to $elsewhere"
  rmdir "$PG_LINK"
  mkdir -p "$elsewhere"
  chown "$PG_SYSTEM_USER:" "$elsewhere"
  chmod 700 "$elsewhere"
  ln -s "$elsewhere" "$PG_LINK"
}

pg_init() {
  local data="$1"
  [[ -f "$data/PG_VERSION" ]] && return 0
  log "creating a PostgreSQL cluster in $data"
  as_pg_user rm -rf "$data" # what an interrupted initdb left
  as_pg_user mkdir -p "$(pg_dir)/logs"
  # --no-sync only skips flushing initdb's own files; the server itself runs with fsync on.
  as_pg_user "$PG_BIN_DIR/initdb" -D "$data" -U "$PG_ROLE" --auth=trust --encoding=UTF8 \
    --locale=C --no-sync >"$(pg_dir)/logs/initdb.log" 2>&1 ||
    fail_with_logs "initdb failed" "$(pg_dir)/logs/initdb.log"
  as_pg_user tee "$data/pg_hba.conf" >/dev/null <<'EOF'
# LOCAL DEVELOPMENT AND TESTS ONLY: any local process may connect as any role without a password,
# over loopback TCP only (the server listens on 127.0.0.1 and has no Unix socket).
# Never put real data in this cluster.
host  all  all  127.0.0.1/32  trust
EOF
  as_pg_user tee -a "$data/postgresql.conf" >/dev/null <<'EOF'

# ---- deploy/local/infra.sh (the port is given on the command line) ----
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
# Durable commits as in production: benchmarks against this cluster must be honest.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
}

pg_running() {
  local dir
  dir="$(pg_dir)"
  [[ -n "$dir" && -f "$dir/data/PG_VERSION" ]] || return 1
  as_pg_user "$PG_BIN_DIR/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

pg_server_pid() {
  head -n 1 "$(pg_dir)/data/postmaster.pid" 2>/dev/null || echo "?"
}

pg_answers() {
  PGCONNECT_TIMEOUT=3 "$PG_BIN_DIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d postgres &&
    [[ "$(PGCONNECT_TIMEOUT=3 "$PG_BIN_DIR/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" \
      -d postgres -c 'select 1' 2>/dev/null)" == 1 ]]
}

pg_start() {
  local dir
  dir="$(pg_dir)"
  port_free "$PG_PORT" || die "port $PG_PORT is taken by another process (set HELPDESK_PG_PORT)"
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg_user "$PG_BIN_DIR/pg_ctl" start -D "$dir/data" -l "$dir/logs/postgres.log" \
    -o "-p $PG_PORT" -w -t "$START_TIMEOUT" >/dev/null 2>&1 9>&- ||
    fail_with_logs "PostgreSQL did not start" "$dir/logs/postgres.log"
}

# Returns 0 once PostgreSQL answers, 1 if it is not running any more; fails on timeout.
pg_wait() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until pg_answers; do
    pg_running || return 1
    ((SECONDS < deadline)) ||
      fail_with_logs "PostgreSQL did not answer on 127.0.0.1:$PG_PORT within ${START_TIMEOUT}s (still running: infra.sh down stops it)" \
        "$(pg_dir)/logs/postgres.log"
    sleep 0.2
  done
}

pg_up() {
  pg_prepare_dir
  if pg_running; then
    pg_answers && return 0
    log "PostgreSQL is running but does not answer yet; waiting"
    pg_wait && return 0
    log "PostgreSQL stopped meanwhile; starting it again"
  fi
  pg_init "$(pg_dir)/data"
  pg_start # a stale postmaster.pid (process gone) is cleared by PostgreSQL itself
  pg_wait || fail_with_logs "PostgreSQL exited during startup" "$(pg_dir)/logs/postgres.log"
  log "PostgreSQL ready: postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/postgres"
}

# What a database needs from a superuser (deploy/postgres/), in template1 so that every
# database created afterwards has it. Idempotent: run on every `up`.
pg_provision() {
  "$PG_BIN_DIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" \
    -d template1 -f "$REPO_ROOT/deploy/postgres/leakproof.sql" >/dev/null ||
    die "could not run deploy/postgres/leakproof.sql in template1"
}

# "fast" mode (SIGINT): roll back open transactions, disconnect clients and shut down cleanly.
# SIGTERM ("smart") would wait for pooled client connections that never close on their own.
# After $STOP_TIMEOUT seconds: "immediate" (SIGQUIT), then SIGKILL.
pg_down() {
  pg_running || return 0
  local data pid
  data="$(pg_dir)/data"
  pid="$(pg_server_pid)"
  log "stopping PostgreSQL (pid $pid)"
  as_pg_user "$PG_BIN_DIR/pg_ctl" stop -D "$data" -m fast -t "$STOP_TIMEOUT" >/dev/null 2>&1 && return 0
  log "PostgreSQL did not stop within ${STOP_TIMEOUT}s; stopping it immediately"
  as_pg_user "$PG_BIN_DIR/pg_ctl" stop -D "$data" -m immediate -t 10 >/dev/null 2>&1 && return 0
  kill -KILL "$pid" 2>/dev/null || true
}

pg_status() {
  if ! pg_running; then
    echo "postgres: stopped"
    return 1
  fi
  if pg_answers; then
    echo "postgres: running (pid $(pg_server_pid)), answers on 127.0.0.1:$PG_PORT"
  else
    echo "postgres: running (pid $(pg_server_pid)), NOT answering on 127.0.0.1:$PG_PORT"
    return 1
  fi
}

# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

cmd_up() {
  take_lock
  # Everything that can be missing is checked before anything starts.
  jdk_tool java >/dev/null
  jdk_tool javac >/dev/null
  pg_ensure_binaries
  pg_ensure_system_user
  kafka_begin_up
  pg_up
  pg_provision
  kafka_finish_up
}

cmd_down() {
  [[ -d "$LOCAL_DIR" ]] || return 0
  take_lock
  kafka_down
  pg_down
}

cmd_status() {
  local rc=0
  kafka_status || rc=3
  pg_status || rc=3
  return "$rc"
}

cmd_env() {
  echo "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
  # Prefixed: the services read KAFKA_SASL_* themselves, and must not sign in by accident.
  echo "export HELPDESK_KAFKA_SASL_BOOTSTRAP=127.0.0.1:$KAFKA_SASL_PORT"
  echo "export HELPDESK_KAFKA_SASL_USER=$KAFKA_SCRAM_USER"
  echo "export HELPDESK_KAFKA_SASL_PASSWORD=$KAFKA_SCRAM_PASSWORD"
  echo "export DATABASE_ADMIN_URL=postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/postgres"
}

cmd_reset() {
  cmd_down
  local dir
  dir="$(pg_dir)"
  log "deleting the data in $LOCAL_DIR (the Kafka jars in $KAFKA_LIBS stay)"
  [[ -n "$dir" ]] && rm -rf "$dir"
  rm -rf "$PG_LINK" "$KAFKA_DATA" "$KAFKA_LOGS" "$KAFKA_CONF" "$KAFKA_PID_FILE" "$KAFKA_DIR/libs.tmp"
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    *)
      sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
