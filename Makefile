# The development loops. `make test` is what CI runs (.ci/run adds what a
# fresh machine needs); the others are shortcuts for day-to-day work.
# docs/development.md explains each.

GO ?= go

.PHONY: test test-short e2e chaos lint api-lint bench demo

# Every test, as CI runs it (PostgreSQL and Chromium must be there).
test:
	$(GO) test -race ./...

# The quick loop: unit, store and end-to-end tests without the long suites
# (chaos, killed processes, property runs, the browser), the end-to-end
# tests on SQLite alone.
test-short:
	$(GO) test -short ./...

# The end-to-end tests alone (hub and simulators over HTTP).
e2e:
	$(GO) test -race ./test/e2e

# The long chaos suite (minutes per backend; restarts PostgreSQL).
chaos:
	$(GO) test -tags chaos -timeout 60m -v ./test/chaos

# Formatting, vet and staticcheck (run, not a dependency of the module).
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Every API document, on Redocly's recommended rules.
api-lint:
	npx --yes @redocly/cli@2.77.0 lint --format=summary api/*.yaml

# Benchmarks: the engine's Go benchmarks and the end-to-end figures.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./internal/engine
	$(GO) run ./cmd/provhub bench engine
	$(GO) run ./cmd/provhub bench crm

demo:
	$(GO) run ./cmd/provhub demo
