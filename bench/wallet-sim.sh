#!/usr/bin/env bash
# Measures sendScript on provhub's wallet-server simulator and on a Prism
# mock of the same document (api/wallet.yaml), one after the other, and
# prints the ratio. Prism is installed with npm into a temporary folder and
# is never a dependency of the project.
# Usage: bench/wallet-sim.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-20000}
scratch=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"; }
trap cleanup EXIT
go build -o "$scratch/provhub" ./cmd/provhub
(cd "$scratch" && npm install --silent --no-audit --no-fund @stoplight/prism-cli@5.14.2 >/dev/null)

"$scratch/provhub" sim wallet --listen 127.0.0.1:19400 --task-delay 1ms --log-level error >/dev/null 2>&1 &
pids+=($!)
"$scratch/node_modules/.bin/prism" mock api/wallet.yaml -p 19410 >"$scratch/prism.log" 2>&1 &
pids+=($!)
for url in http://127.0.0.1:19400/admin/stats http://127.0.0.1:19410/getTaskStatus; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.2; done
done

sim=$("$scratch/provhub" bench wallet-sim --url http://127.0.0.1:19400 --name provhub-sim --requests "$requests")
echo "$sim"
prism=$("$scratch/provhub" bench wallet-sim --url http://127.0.0.1:19410 --name prism-mock --setup=false --requests "$requests")
echo "$prism"
rate() { sed -E 's/.*: ([0-9]+) calls\/s.*/\1/' <<<"$1"; }
awk -v a="$(rate "$sim")" -v b="$(rate "$prism")" 'BEGIN { printf "ratio provhub-sim / prism-mock: %.1fx\n", a / b }'
