#!/usr/bin/env bash
# Runs provhub's engine benchmark on SQLite and PostgreSQL and the same
# workload on River, one after the other on the same machine and database.
# Usage: bench/run.sh [JOBS]   (PROVHUB_BENCH_PG overrides the PostgreSQL URL)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-50000}
pg=${PROVHUB_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
go build -o "$scratch/provhub" ./cmd/provhub
(cd bench/river && go build -o "$scratch/river" .)
# provhub refuses a database holding real jobs: give it a schema of its own.
schema="provhub_bench_$$"
psql "$pg" -qc "CREATE SCHEMA $schema"
trap 'psql "$pg" -qc "DROP SCHEMA IF EXISTS '"$schema"' CASCADE"; rm -rf "$scratch"' EXIT
pgschema="$pg&search_path=$schema"
for subjects in 0 1000; do
  "$scratch/provhub" bench engine --jobs "$jobs" --subjects "$subjects"
  "$scratch/provhub" bench engine --jobs "$jobs" --subjects "$subjects" --db "$pgschema"
done
"$scratch/river" --jobs "$jobs" --db "$pg"
