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

## test-citus: the isolation, CLI and web handler tests again, on a Citus
## cluster (a coordinator and two workers; built once, see scripts/services.sh)
# The CLI and web tests of tenancy, isolation and the tenant-scoped pages.
# Left out, as they test what is off or refused on Citus (README, "Scaling
# out on Citus"): the credential cache and its notices, pg_dump restores,
# operator serial columns in schema shards, adopting a table whose key lacks
# tenant_id; and, for time, the outage, browser and benchmark tests, which
# exercise no SQL of their own.
CITUS_POSTGRES_TESTS := Isolation|Citus
CITUS_CLI_TESTS := ^(TestAPIKeyAndAdminCommands|TestTenantAuditRecordsCLIActions|TestPlanCommands|TestTenantUpdateAndUsage|TestWhitelabelGuide|TestWhitelabelBadInput|TestInitAndMigrateOnANewDatabase|TestTenantLifecycle|TestBadInput|TestDoctor|TestDomainCommands|TestDomainCommandErrors|TestDomainOutputHasTheGuidesLines|TestWhitelabelEmail|TestTenantExportImport|TestTenantImportChecksTheArchive|TestTenantMembers|TestTenantMemberBadInput|TestOrganizations|TestSchemaStrategyFromAFreshDatabase|TestCreateDefaultAfterInit|TestSingleTenantCLI|TestMigrateProgressBar|TestWelcomeMailFromTheCLI|TestPasswordResetThroughSMTP|TestServe)$$
CITUS_WEB_TESTS := ^(TestAuditPortalIsolation|TestDomainsTenantIsolation|TestInvitationsAndMembersStayInTheirTenant|TestBillingAcrossTenants|TestSessionsDoNotCrossTenants|TestAPIDoesNotRevealTenants|TestSignInOutAndRoles|TestAPIKeysAndTenantAPI|TestPasswordReset|TestBrandingPage|TestThemeLifecycle|TestDomainsPageListAndAdd|TestDomainsPrimaryAndRemove|TestMembersListSearchAndPaging|TestMembersAdminChangesRolesWithinTheRules|TestInvitationAcceptFlow|TestEmailTemplateEditor|TestAdminTenantList|TestAdminCreateTenant|TestAdminSuspendActivate|TestAdminDeleteTenant|TestAPIQuota|TestCSRF|TestHostsAndTenantStates|TestCustomDomainRouting|TestAuditPortalActionsRecorded|TestLandingIsBrandedAndSecured)$$
test-citus: services
	@$(SERVICES) start citus >/dev/null
	@eval "$$($(SERVICES) env citus)" && go vet -tags citus ./internal/postgres/ && \
	go test -count=1 -tags citus -run '$(CITUS_POSTGRES_TESTS)' ./internal/postgres/ && \
	go test -count=1 -run '$(CITUS_CLI_TESTS)' ./cmd/nself/ && \
	go test -count=1 -run '$(CITUS_WEB_TESTS)' ./web/

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

## screenshots: a PNG of every page at 1366 and 390 px, outside git
SCREENSHOTS ?= $(HOME)/.cache/nself/screenshots
screenshots: services
	@$(ENV) && NSELF_SCREENSHOT_DIR=$(SCREENSHOTS) go test -count=1 -run '^TestScreenshots$$' ./e2e/ && echo "screenshots in $(SCREENSHOTS)"
