#!/usr/bin/env bash
# Fuzzes Pilotfish's input parsers with libFuzzer (AddressSanitizer on), and runs the proxy and agent test
# suites under ThreadSanitizer.
#
#   hack/fuzz.sh --smoke [target...]   a few seconds per target (CI); exits 1 if any target crashes
#   hack/fuzz.sh --long  [target...]   1,000,000 inputs per target, one target after another (optimised build)
#   hack/fuzz.sh --runs N | --seconds S [target...]   a custom budget per target
#   hack/fuzz.sh --tsan                ProxyEngineTests, ProxyCoreTests, ProxyHTTPTests, ProxyServerTests, AgentTests under TSan
#   hack/fuzz.sh --list                the targets
#
# Targets (Sources/Fuzz/<name>/main.swift, seeds in Tests/FuzzCorpus/<name>/): HTTP1 (request heads, bodies,
# chunked scanner and the downstream state machine, with reads split where the input says), Bootstrap
# (JSON/YAML decoding, validation, models), PodMetadata, AdmissionReview, CaptureFlags (istio-iptables flags
# and environment), Durations (Go, proto3 JSON and --probe-timeout), AdminQuery (the admin API's queries).
# They are package targets only when PILOTFISH_FUZZ=1, and are built with `--sanitize=fuzzer
# --sanitize=address` in their own scratch path (.build-fuzz; .build-tsan for --tsan): -c debug for --smoke
# (quicker to build), -c release for the rest (about 3x the inputs per second; overflow and bounds traps stay
# in optimised Swift). FUZZ_CONFIG=debug|release overrides.
#
# A crash leaves its input in .build-fuzz/crashes/<target>-crash-*; reproduce it with
#   .build-fuzz/<debug|release>/Fuzz<target> <file>
# then minimise it with `-minimize_crash=1 -runs=100000 <file>`. The corpus each run grows is kept in
# .build-fuzz/corpus/<target>/ (the seeds under Tests/FuzzCorpus are only read).
set -euo pipefail
cd "$(dirname "$0")/.."

targets_all=(HTTP1 Bootstrap PodMetadata AdmissionReview CaptureFlags Durations AdminQuery)
# Inputs longer than this are not generated (the seeds show the size each format needs).
declare -A max_len=([HTTP1]=4096 [Bootstrap]=8192 [PodMetadata]=8192 [AdmissionReview]=16384
  [CaptureFlags]=1024 [Durations]=64 [AdminQuery]=512)

mode=""
budget=()
selected=()
while (($#)); do
  case "$1" in
    --smoke) mode=smoke; budget=(-max_total_time="${FUZZ_SMOKE_SECONDS:-5}") ;;
    --long) mode=long; budget=(-runs=1000000) ;;
    --runs) mode=custom; budget=(-runs="$2"); shift ;;
    --seconds) mode=custom; budget=(-max_total_time="$2"); shift ;;
    --tsan) mode=tsan ;;
    --list) printf '%s\n' "${targets_all[@]}"; exit 0 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "hack/fuzz.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
    *)
      if [[ ! " ${targets_all[*]} " == *" $1 "* ]]; then
        echo "hack/fuzz.sh: unknown target $1; targets: ${targets_all[*]}" >&2
        exit 1
      fi
      selected+=("$1")
      ;;
  esac
  shift
done
if [ -z "$mode" ]; then
  echo "hack/fuzz.sh: say --smoke, --long, --runs N, --seconds S or --tsan (see --help)" >&2
  exit 1
fi
source hack/setup.sh

if [ "$mode" = tsan ]; then
  # Own scratch path: a TSan build shares nothing with the normal or the fuzzing one.
  swift build --build-tests --sanitize=thread --scratch-path .build-tsan
  failed=()
  for target in ProxyEngineTests ProxyCoreTests ProxyHTTPTests ProxyServerTests AgentTests; do
    echo "hack/fuzz.sh: $target under ThreadSanitizer" >&2
    TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/hack/tsan-suppressions.txt ${TSAN_OPTIONS:-}" \
      swift test --skip-build --disable-xctest --sanitize=thread --scratch-path .build-tsan \
      --filter "^$target\." || failed+=("$target")
  done
  if ((${#failed[@]})); then
    echo "hack/fuzz.sh: ThreadSanitizer runs failed: ${failed[*]}" >&2
    exit 1
  fi
  echo "hack/fuzz.sh: every ThreadSanitizer run passed" >&2
  exit 0
fi

((${#selected[@]})) || selected=("${targets_all[@]}")
scratch=.build-fuzz
config=${FUZZ_CONFIG:-$([ "$mode" = smoke ] && echo debug || echo release)}
# swiftc keeps only the last `-sanitize=` flag and SwiftPM passes `-sanitize=fuzzer -sanitize=address`
# separately: without the explicit coverage flags the library modules got AddressSanitizer but no coverage
# counters, and libFuzzer mutated blind outside the harness ("Is the code instrumented for coverage?").
build_flags=(-c "$config" --sanitize=fuzzer --sanitize=address --scratch-path "$scratch"
  -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table)
# Some targets reach internals with `@testable import`, which an optimised build allows only with this.
if [ "$config" = release ]; then build_flags+=(-Xswiftc -enable-testing); fi
export PILOTFISH_FUZZ=1
# SwiftPM does not recompile modules when only -Xswiftc flags change (an optimised build kept uninstrumented
# objects): a build directory made with other flags is removed first.
bin=$(swift build "${build_flags[@]}" --show-bin-path)
stamp="$scratch/.flags-$config"
if [ -d "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" != "${build_flags[*]}" ]; then
  echo "hack/fuzz.sh: build flags changed; rebuilding $bin from scratch" >&2
  rm -rf "$(readlink -f "$bin")"
fi
mkdir -p "$scratch"
echo "${build_flags[*]}" >"$stamp"
for target in "${selected[@]}"; do
  echo "hack/fuzz.sh: building Fuzz$target" >&2
  # gold warns once per AddressSanitizer helper symbol it cannot export (hundreds of lines, harmless).
  swift build "${build_flags[@]}" --product "Fuzz$target" 2>&1 \
    | { grep -v "Cannot export local symbol '__asan" || true; } >&2
done

# A crash must reach libFuzzer's handler (which saves the input) at once, not Swift's interactive backtracer.
export SWIFT_BACKTRACE=enable=no
# Swift's runtime caches look like leaks to LeakSanitizer; the parsers own no manual memory.
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
mkdir -p "$scratch/crashes" "$scratch/logs"
summary=()
crashed=()
for target in "${selected[@]}"; do
  corpus="$scratch/corpus/$target"
  mkdir -p "$corpus"
  log="$scratch/logs/$target.log"
  echo "hack/fuzz.sh: fuzzing $target (${budget[*]})" >&2
  status=0
  # An input slower than FUZZ_TIMEOUT (30 s) counts as a hang. Not 10 s: at nice 19 on a busy 2-core box a
  # PodMetadata input that runs in 34 ms was starved past 10 s and reported as a timeout.
  "$bin/Fuzz$target" "$corpus" "Tests/FuzzCorpus/$target" "${budget[@]}" -max_len="${max_len[$target]}" \
    -timeout="${FUZZ_TIMEOUT:-30}" -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$scratch/crashes/$target-" \
    >"$log" 2>&1 || status=$?
  # A binary whose parsers carry no coverage counters fuzzes blind: that is a failure of this script.
  if grep -q "Is the code instrumented for coverage" "$log"; then
    echo "hack/fuzz.sh: $target is not instrumented for coverage (see the build flags above); log $log" >&2
    status=2
  fi
  # libFuzzer's final stats (-print_final_stats=1): inputs run and average executions per second.
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if ((status != 0)); then
    crashed+=("$target")
    echo "hack/fuzz.sh: $target CRASHED (exit $status); log $log:" >&2
    grep -E 'Fatal error|ERROR: |SUMMARY|Test unit written|Base64' "$log" | head -20 >&2 || tail -30 "$log" >&2
    summary+=("$(printf '%-16s crashed after %s inputs' "$target" "${runs:-?}")")
  else
    summary+=("$(printf '%-16s %10s inputs  %6s exec/s  0 crashes' "$target" "${runs:-?}" "${rate:-?}")")
  fi
done
echo "hack/fuzz.sh: summary ($mode)" >&2
printf '  %s\n' "${summary[@]}" >&2
if ((${#crashed[@]})); then
  echo "hack/fuzz.sh: crashes in: ${crashed[*]} (inputs in $scratch/crashes/)" >&2
  exit 1
fi
