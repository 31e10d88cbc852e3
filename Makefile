# The two set-up commands are `make run` and `make test`; everything else is a step of those.
# Every Node tool runs on the Node pinned in package.json (node_modules/.bin/node, Node 24).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NPM_STAMP := node_modules/.install-stamp

.PHONY: run test bench deps build generate check-generated lint chart infra-install infra-up infra-down cluster token clean help

help:
	@echo "make run        the whole mesh in one process, embedded drivers, no external servers"
	@echo "make test       install what tests need, start the real infrastructure, run every test, stop it"
	@echo "make cluster    every service its own process against the real infrastructure"
	@echo "make bench      the load generator against the cluster (ARGS=\"--clients 2000 --rate 1000\")"
	@echo "                (ARGS=\"--scenario group --members 500 --rate 50\" for one large group)"
	@echo "make token USER=alice   a development JWT for the public API"
	@echo "make chart     helm lint, template and Kubernetes schema validation of helm/chat (also part of make test)"
	@echo "make generate | lint | build | infra-up | infra-down"

# npm packages, including the pinned Node binary. The system npm only bootstraps; nothing runs on it.
$(NPM_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v24\.' || { echo "pinned Node 24 missing from node_modules/.bin" >&2; exit 1; }
	@touch $@

deps: $(NPM_STAMP)

build: deps
	tsc -p tsconfig.json

run: build
	node dist/cmd/chat.js embedded

generate: deps
	buf generate

# Generated code must match the contracts: regenerate and fail on any difference.
check-generated: generate
	@git diff --exit-code --stat -- gen || { echo "gen/ is stale: run 'make generate' and commit it" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- gen)" || { git status --porcelain -- gen; echo "gen/ has untracked generated files: commit them" >&2; exit 1; }

lint: deps
	buf lint
	eslint --max-warnings 0 .
	tsc -p tsconfig.json --noEmit

# The Helm chart's checks alone (no cluster, no infrastructure); see helm/README.md.
chart:
	bash scripts/tools.sh
	bash scripts/chart-check.sh

infra-install:
	bash infra/install.sh

infra-up: infra-install
	bash infra/up.sh

infra-down:
	bash infra/down.sh

cluster: build infra-up
	source infra/env.sh && node dist/cmd/chat.js cluster

test: deps
	bash scripts/test.sh

# The load generator against the cluster mode on the real infrastructure (see bench/run.ts for
# flags: ARGS="--clients 2000 --rate 1000 --duration 30 --sweep 1000,1500,2000,3000"). It runs with
# the services' Node options (cmd/cluster.ts): its own GC pauses would show up as latency.
bench: build infra-up
	source infra/env.sh && NODE_OPTIONS="--max-semi-space-size=16 --v8-pool-size=1" node dist/bench/run.js $(ARGS)

# A development token for the public API: make token USER=alice
token: build
	@node dist/cmd/chat.js token "$(USER)"

clean:
	rm -rf dist
