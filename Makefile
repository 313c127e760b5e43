# The two commands of the README: `make run` starts everything, `make test`
# runs every test. Both start the local services (scripts/services.sh) first.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

SERVICES := scripts/services.sh
ENV := eval "$$($(SERVICES) env)"

.PHONY: run test test-citus build services stop check bench screenshots

## run: start the services, migrate, seed the demo tenant
run: services build
	@$(ENV) && scripts/demo.sh bin/nself

## test: check formatting and vet, then run every test against the real services
test: services check
	@$(ENV) && go test -count=1 -p 2 ./...

## test-citus: every test of internal/postgres (the Citus ones included), the
## CLI and the web handlers again, on a Citus cluster (a coordinator and two
## workers; built once, see scripts/services.sh)
# A test spends most of its time waiting for its database, made from the
# template on three nodes: the packages run side by side (-p 2), with room
# to finish on a loaded machine.
test-citus: services
	@$(SERVICES) start citus >/dev/null
	@eval "$$($(SERVICES) env citus)" && go vet -tags citus ./internal/postgres/ && \
	go test -count=1 -p 2 -timeout 30m -tags citus ./internal/postgres/ ./cmd/nself/ ./web/

build:
	go build -o bin/nself ./cmd/nself

services:
	@$(SERVICES) start >/dev/null

stop:
	@$(SERVICES) stop

check:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	@before="$$(cat views/*_templ.go | sha256sum)"; go tool templ generate -path views >/dev/null 2>&1; \
	if [ "$$before" != "$$(cat views/*_templ.go | sha256sum)" ]; then echo "templ generate changed views/*_templ.go: they were out of date; commit them"; exit 1; fi

## bench: the benchmarks recorded in docs/benchmarks.md
bench: services
	@$(ENV) && go test -run '^$$' -bench . -benchtime 2000x ./internal/postgres/

## screenshots: a PNG of every page at 1366 and 390 px (single sign-on's by its own flow), outside git
SCREENSHOTS ?= $(HOME)/.cache/nself/screenshots
screenshots: services
	@$(ENV) && NSELF_SCREENSHOT_DIR=$(SCREENSHOTS) go test -count=1 -run '^(TestScreenshots|TestSSOByClicks)$$' ./e2e/ && echo "screenshots in $(SCREENSHOTS)"
