#!/usr/bin/env bash
# xDS push cost of pilotfish-proxy for a mesh-sized config: N EDS clusters (100, 1,000, 5,000 by default),
# 200 listeners and 200 route tables in istiod's shapes, in one push over ADS (delta and state of the world)
# from the tests' grpcio control plane (Tests/Helpers/xds_control_plane.py); then a single endpoint change.
# Per size and variant: time from the push to each type's ACK, the control plane's own serialization time,
# the proxy's CPU and RSS, its idle CPU after, the one-endpoint change's ACK time and CPU, and p50/p99 of
# fixed-rate HTTP traffic on a live listener before and during the push.
#
#   hack/bench-xds.sh [--clusters 100,1000,5000] [--variants delta,sotw] [--runs 3] [--rate 1000]
#                     [--concurrency 1] [--no-traffic] [--perf DIR] [--json FILE|-]
#
# Needs: python3 with grpcio and xds-protos, hey (installed here if missing), perf for --perf, and a release
# build (built here, as hack/bench-proxy.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import grpc, envoy.service.discovery.v3.ads_pb2_grpc" 2>/dev/null; then
  echo "bench: python3 needs grpcio and xds-protos: python3 -m pip install grpcio xds-protos" >&2
  exit 1
fi
if ! command -v hey >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends hey >/dev/null
fi

# The statically linked build the image ships, in its own scratch path (as hack/bench-proxy.sh).
build=(swift build -c release --product pilotfish-proxy --static-swift-stdlib --scratch-path .build-static)
echo "bench: building pilotfish-proxy (release, static Swift runtime as in the image)" >&2
nice "${build[@]}" >&2
exec python3 hack/bench/xds_bench.py --proxy "$("${build[@]}" --show-bin-path)/pilotfish-proxy" "$@"
