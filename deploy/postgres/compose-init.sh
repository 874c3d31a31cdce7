#!/usr/bin/env bash
# Run once by the postgres image's entrypoint on an empty data directory (compose.yaml
# mounts it into /docker-entrypoint-initdb.d): as deploy/local/up.sh does, each service
# gets a database of its own, owned by a login role of its own that is neither a superuser
# nor bypasses row-level security. The passwords come from the environment
# (<SERVICE>_DB_PASSWORD), the same variables the services' DATABASE_URLs are built from.
set -euo pipefail

# template1 first, so that every database created from it has these functions marked.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname template1 \
  -f /helpdesk/leakproof.sql

for name in ticketing sla notifications feedback; do
  password_var="${name^^}_DB_PASSWORD"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="$name" -v password="${!password_var}" <<'SQL'
CREATE ROLE :"name" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
SQL
done
