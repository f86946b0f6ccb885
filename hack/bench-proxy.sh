#!/usr/bin/env bash
# Benchmarks pilotfish-proxy against HAProxy (one worker each) and a direct connection, in one run:
# HTTP/1.1 keep-alive rps and latency through an L4 (tcp_proxy / mode tcp) and an L7 (HCM / mode http)
# proxy, connection rate (a new connection per request), bulk TCP throughput, CPU per request, proxy RSS
# idle and per 1,000 idle connections, and start-to-ready time. Ratios against HAProxy are printed.
#
#   hack/bench-proxy.sh [--duration 8] [--runs 3] [--connections 64] [--rate 2000] [--chart docs/bench.png]
#
# Also: p99 latency at a fixed request rate (hey -q), and with --chart a PNG of the per-run ratios.
# Needs: nginx, haproxy, wrk, hey, curl, perf, matplotlib (installed here if missing) and a release build
# (built here).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nginx-light haproxy wrk hey curl python3 python3-pip linux-perf)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ " $* " == *" --chart "* ]] && ! python3 -c "import matplotlib" 2>/dev/null; then
  python3 -m pip install --quiet matplotlib >&2
fi

# Measure what the image ships: deploy/images/Dockerfile.proxy links the Swift runtime and Foundation
# statically. A dynamically linked build measured 6-12% more CPU per request and ~5 MiB more idle RSS. Its own
# scratch path (.build-static) keeps the static build apart from other release builds.
build=(swift build -c release --product pilotfish-proxy --static-swift-stdlib --scratch-path .build-static)
echo "bench: building pilotfish-proxy (release, static Swift runtime as in the image)" >&2
"${build[@]}" >&2
exec python3 hack/bench/proxy_bench.py --proxy "$("${build[@]}" --show-bin-path)/pilotfish-proxy" "$@"
