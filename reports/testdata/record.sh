#!/bin/sh
# Regenerates the recorded Ginkgo JSON report (ginkgo-report.json) from the recorder suite.
# The recorder has a failing spec on purpose, so go test exits 1; the report is still written.
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
RECORDER_SUITE=traffic go test ./reports/testdata/recorder -count=1 -ginkgo.json-report="$tmp/traffic.json" >/dev/null || true
RECORDER_SUITE=sidecars go test ./reports/testdata/recorder -count=1 -ginkgo.json-report="$tmp/sidecars.json" >/dev/null || true
# ginkgo --json-report writes one array for all suites; join the two like it does.
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))+json.load(open(sys.argv[2])), indent=2))' \
  "$tmp/traffic.json" "$tmp/sidecars.json" > reports/testdata/ginkgo-report.json
rm -rf "$tmp"
echo wrote reports/testdata/ginkgo-report.json
