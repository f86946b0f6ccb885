#!/usr/bin/env bash
# Benchmark: rule install time per pod, per backend (in-process libnftables vs exec of iptables-restore),
# single family vs dual stack. Each sample installs Istio's injector rule set into a fresh network namespace.
# Reports the whole process (wall, what an init container costs) and the apply step alone (as the CLI logs it).
# Usage: sudo hack/bench-interception.sh [samples]   (default 20; bounded to 200)
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh
[ "$(id -u)" -eq 0 ] || { echo "hack/bench-interception.sh: run as root (it creates network namespaces)" >&2; exit 1; }
samples=${1:-20}
((samples > 200)) && samples=200

swift build -c release --product pilotfish >/dev/null
bin="$PWD/.build/release/pilotfish"
ns=pf-bench-$$
trap 'ip netns del $ns 2>/dev/null || true' EXIT

stats() { sort -n | awk '{a[NR]=$1} END {printf "median %7.2f ms   p90 %7.2f ms", a[int((NR+1)/2)], a[int(NR*0.9+0.5)]}'; }

printf '%-16s %-11s %-40s %s\n' backend families "whole process" "apply step"
for backend in nftables iptables-legacy iptables-nft; do
  for families in ipv4 dual-stack; do
    extra=(); [ "$families" = dual-stack ] && extra=(--dual-stack)
    walls=(); applies=()
    for _ in $(seq "$samples"); do
      ip netns add "$ns"; ip -n "$ns" link set lo up
      start=$(date +%s%N)
      log=$(ip netns exec "$ns" "$bin" istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' \
        -d 15090,15021,15020 --backend "$backend" "${extra[@]}" 2>&1)
      end=$(date +%s%N)
      ip netns del "$ns"
      walls+=("$(awk -v d=$((end - start)) 'BEGIN{print d/1e6}')")
      applies+=("$(grep -o 'interception.elapsed=[0-9.e-]*' <<<"$log" | cut -d= -f2 | awk '{print $1*1000}')")
    done
    printf '%-16s %-11s %-40s %s\n' "$backend" "$families" "$(printf '%s\n' "${walls[@]}" | stats)" \
      "$(printf '%s\n' "${applies[@]}" | stats)"
  done
done
