#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, runs every test.
# Tests that need root and network namespaces run when root; with CI=true (or PILOTFISH_PRIVILEGED_TESTS=1)
# they must run, so a missing privilege fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh

if [ "${CI:-}" = "true" ]; then export PILOTFISH_PRIVILEGED_TESTS=1; fi
# Leftovers of an interrupted earlier run (namespaces are named pf-*).
for ns in $(ip netns list 2>/dev/null | awk '/^pf-/{print $1}'); do ip netns del "$ns" 2>/dev/null || true; done

swift build --build-tests
swift test --skip-build --disable-xctest "$@"
