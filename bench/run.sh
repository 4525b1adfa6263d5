#!/usr/bin/env bash
# Runs every benchmark of bench/README.md's tables, one after the other on
# the same machine and database: provhub's engine on SQLite and PostgreSQL
# and the same workload on River; the CRM API on SQLite, on PostgreSQL and
# on three provhub serve processes sharing PostgreSQL (each beside a bare
# net/http JSON handler, with the latency at half load); wallet tasks on one
# and on 1,000 secure elements, and on one and three serve processes
# sharing PostgreSQL; top-ups on 100 devices.
# Usage: bench/run.sh [JOBS]   (PROVHUB_BENCH_PG overrides the PostgreSQL URL;
# PROVHUB_BENCH_ENGINE_ONLY=1 runs the engine rows alone)
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
[ "${PROVHUB_BENCH_ENGINE_ONLY:-}" = 1 ] && exit 0

# The CRM benchmark refuses a database holding requests: a fresh schema
# for each PostgreSQL run.
fresh() {
  psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null
  psql "$pg" -qc "CREATE SCHEMA $schema"
}
crm=$((jobs / 2))
"$scratch/provhub" bench crm --requests "$crm" --clients 64
fresh
"$scratch/provhub" bench crm --requests "$crm" --clients 64 --db "$pgschema"
fresh
"$scratch/provhub" bench crm --requests "$crm" --clients 64 --db "$pgschema" --instances 3
"$scratch/provhub" bench wallet --tasks 2000 --secure-elements 1
"$scratch/provhub" bench wallet --tasks "$((jobs / 4))" --secure-elements 1000
fresh
"$scratch/provhub" bench wallet --tasks "$((jobs / 10))" --secure-elements 1000 --db "$pgschema" --instances 1
fresh
"$scratch/provhub" bench wallet --tasks "$((jobs / 10))" --secure-elements 1000 --db "$pgschema" --instances 3
"$scratch/provhub" bench topup --devices 100 --topups 10
