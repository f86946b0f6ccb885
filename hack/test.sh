#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, runs every test (arguments, if any,
# go to one `swift test`, e.g. --filter X).
# Tests that need root and network namespaces run when root; with CI=true (or PILOTFISH_PRIVILEGED_TESTS=1)
# they must run, so a missing privilege fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh

if [ "${CI:-}" = "true" ]; then export PILOTFISH_PRIVILEGED_TESTS=1; fi
# Leftovers of an interrupted earlier run (namespaces are named pf-*).
for ns in $(ip netns list 2>/dev/null | awk '/^pf-/{print $1}'); do ip netns del "$ns" 2>/dev/null || true; done

swift build --build-tests
if (($#)); then
  exec swift test --skip-build --disable-xctest "$@"
fi
# One test process per test target. Swift Testing runs tests on the cooperative pool (a thread per core, two on
# the CI machines): a target whose tests block on child processes, namespaces or sockets for seconds must not
# starve another target's async tests into their timeouts.
# Each target's output is kept (and shown as it runs); a failed target's failing lines are repeated at the end,
# where a CI log that keeps only its tail still shows them.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for dir in Tests/*Tests/; do
  target=$(basename "$dir")
  echo "hack/test.sh: $target" >&2
  # A hung target fails after 25 minutes instead of eating CI's 90 (tests bound their own waits too).
  timeout --kill-after=30 1500 swift test --skip-build --disable-xctest --filter "^$target\." 2>&1 \
    | tee "$logs/$target.log" || failed+=("$target")
done
# CI (or PILOTFISH_FUZZ_SMOKE=1) also replays the fuzz seeds and crashers and fuzzes each parser for a few
# seconds (hack/fuzz.sh --smoke: its own AddressSanitizer build in .build-fuzz, about ten minutes here).
fuzzed=""
if [ "${CI:-}" = "true" ] || [ "${PILOTFISH_FUZZ_SMOKE:-}" = "1" ]; then
  echo "hack/test.sh: fuzz smoke (hack/fuzz.sh --smoke)" >&2
  if hack/fuzz.sh --smoke; then fuzzed="; fuzz smoke passed"; else failed+=("fuzz smoke"); fi
fi
if ((${#failed[@]})); then
  for target in "${failed[@]}"; do
    [ -f "$logs/$target.log" ] || continue
    echo "hack/test.sh: what failed in $target:" >&2
    grep -E '✘|recorded an issue|Fatal error|fatal error|Crash|signal|timed out|error:' "$logs/$target.log" \
      | head -n 80 >&2 || echo "  (no failure lines; the whole log ended with:)" >&2
    tail -n 15 "$logs/$target.log" >&2
  done
  echo "hack/test.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "hack/test.sh: every test target passed$fuzzed" >&2
