# The two commands: `make up` runs the system, `make test` runs every check and test.
.PHONY: up down test test-unit lint schemas settings bench chaos

up:
	deploy/local/up.sh

down:
	deploy/local/down.sh

test:
	deploy/local/test.sh

test-unit:
	uv run pytest tests/unit

lint:
	uv run ruff check . && uv run ruff format --check . && uv run mypy

schemas:
	uv run python -m helpdesk_contracts.schema_files write contracts

# SETTINGS.md, from the services' settings classes (make test checks it is current).
settings:
	uv run python tests/support/settings_doc.py write

# Throughput figures against the local servers (run `make up` or infra.sh up first).
bench:
	uv run pytest tests/benchmarks -m benchmark -s

# Faults under load, the long form (make test runs a short one): 500 events/s for 40 s,
# 10 s outages, on Kafka and PostgreSQL of its own.
chaos:
	CHAOS_RATE=500 CHAOS_SECONDS=40 CHAOS_OUTAGE_S=10 deploy/local/test.sh tests/chaos -s
