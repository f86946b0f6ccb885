#!/usr/bin/env bash
# Installs what Pilotfish needs to build, test and run on Debian/Ubuntu: the C libraries it links
# (libnftables, libmnl, libre2), the peers its tests use (nftables, iptables, iproute2, python3) and checks Swift.
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

packages=(libnftables-dev libmnl-dev libre2-dev nftables iptables iproute2 python3 python3-pip util-linux procps pkg-config openssl curl prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "hack/setup.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Third-party peers the tests check against: Kubernetes schemas, RFC 6902 JSON Patch, the official Envoy
# protos (xds-protos), protoc from grpcio-tools, gRPC's own health service (grpcio-health-checking), and
# two independent HTTP/1 parsers the codec's strictness is judged against (llhttp, h11).
pypi=(kubernetes-validate jsonpatch xds-protos grpcio-tools grpcio-health-checking llhttp h11)
if ! python3 -c 'import kubernetes_validate, jsonpatch, envoy.config.bootstrap.v3.bootstrap_pb2, grpc_tools.protoc, grpc_health.v1.health, llhttp, h11' \
  2>/dev/null; then
  echo "hack/setup.sh: installing ${pypi[*]} from PyPI" >&2
  python3 -m pip install -q "${pypi[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${pypi[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
  else
    echo "hack/setup.sh: no Swift toolchain found: install Swift 6.1 or newer (swift.org) and put it on PATH" >&2
    exit 1
  fi
fi
