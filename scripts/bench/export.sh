#!/usr/bin/env bash
# The export benchmark: `nself tenant export` of a tenant with 1,000,000
# rows and 1,000 objects (64 KiB each), its wall time and peak resident
# memory (GNU time's %M), first at a tenth of the rows.
# Sizes: ROWS, OBJECTS, OBJECT_SIZE. Run from the repository root:
# scripts/bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/services.sh start postgres >/dev/null
scripts/services.sh start minio >/dev/null
eval "$(scripts/services.sh env)"
go test -tags exportbench -count=1 -run '^TestExportBenchmark$' -v -timeout 30m ./cmd/nself/ | grep -E 'RESULT|seeded|stored|export|FAIL|ok'
