#!/bin/sh
# Re-records the Ginkgo JSON reports of suites skipped in BeforeSuite (testdata/skipped):
#  - nocluster.json: the real one-binary suites (suites/all) selecting the mirror suite with no
#    cluster configured, which skips the suite as "could not run";
#  - notclaimed-suite.json / notclaimed-spec.json: suites/internal/gwtest/testdata/skiprecorder,
#    which skips through gwtest.SkipNotClaimed as a suite does for an unclaimed feature (the
#    whole suite in BeforeSuite, or one spec). A real run needs a cluster to get that far.
set -eu
cd "$(dirname "$0")/../../.."
out=reports/ingest/testdata/skipped
env -u KUBECONFIG -u GATECHECK_GATEWAY_CLASS GATECHECK_SUITE=mirror \
  go test ./suites/all -count=1 -ginkgo.json-report="$PWD/$out/nocluster.json" >/dev/null
for s in suite spec; do
  RECORDER_SCENARIO=$s go test ./suites/internal/gwtest/testdata/skiprecorder -count=1 \
    -ginkgo.label-filter=mirror -ginkgo.json-report="$PWD/$out/notclaimed-$s.json" >/dev/null
done
echo "wrote $out/nocluster.json $out/notclaimed-suite.json $out/notclaimed-spec.json"
