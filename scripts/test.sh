#!/usr/bin/env bash
# `make test`: everything the suite needs, the real infrastructure up, every test, infrastructure
# down again (also on failure or interrupt). Fails, naming the server, if a server does not come up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

step "contracts: lint and generated code freshness"
make --no-print-directory check-generated
step "lint: ESLint and type check"
eslint --max-warnings 0 .
step "build (clean)"
rm -rf dist
tsc -p tsconfig.json

step "tools: grpcurl, helm, kubernetes-validate"
bash scripts/tools.sh
step "chart: helm lint --strict, helm template, Kubernetes schema validation (every helm/ci scenario)"
bash scripts/chart-check.sh
step "infrastructure: install and start PostgreSQL, Redis, Kafka, Cassandra"
bash infra/install.sh
trap 'step "infrastructure: stop"; bash infra/down.sh' EXIT
bash infra/up.sh
# shellcheck source=/dev/null
source infra/env.sh

step "tests"
mapfile -t files < <(find dist/packages dist/services dist/tests dist/bench -name '*.test.js' | sort)
node --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
step "done"
