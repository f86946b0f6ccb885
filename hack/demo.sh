#!/usr/bin/env bash
# The main job (README): a "pod" network namespace wired to a "remote" one, Pilotfish's init step run in it
# with the flags Istio's injector passes, and real connections showing where traffic lands.
# Everything happens in namespaces this script creates and removes; only their own addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh
[ "$(id -u)" -eq 0 ] || { echo "hack/demo.sh: run as root (it creates network namespaces)" >&2; exit 1; }

swift build --product pilotfish >/dev/null
swift build --product pilotfish-proxy >/dev/null
bin="$PWD/.build/debug/pilotfish"
proxy_bin="$PWD/.build/debug/pilotfish-proxy"
echo_py="$PWD/Tests/EndToEndTests/Helpers/capture_echo.py"
# The system interpreter: a per-user one (pyenv under /root) is not readable by the demo's other uids.
py=/usr/bin/python3
pod=pf-demo-pod remote=pf-demo-remote
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  # Anything still running inside the pod (a proxy whose agent was killed) goes with it.
  ip netns pids "$pod" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$pod" 2>/dev/null || true
  ip netns del "$remote" 2>/dev/null || true
  [ -n "${sidecar_dir:-}" ] && rm -rf "$sidecar_dir"
  [ -n "${ca_dir:-}" ] && rm -rf "$ca_dir"
  return 0
}
trap cleanup EXIT
cleanup

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_pod() { ip netns exec "$pod" "$@"; }
in_remote() { ip netns exec "$remote" "$@"; }

step "a pod (10.77.0.2, fd77::2) and a remote host (10.77.0.1, fd77::1), joined by a veth pair"
ip netns add "$pod"; ip netns add "$remote"
ip link add pf-demo0 type veth peer name pf-demo1
ip link set pf-demo0 netns "$pod"; ip link set pf-demo1 netns "$remote"
in_pod ip link set lo up; in_remote ip link set lo up
in_pod ip addr add 10.77.0.2/24 dev pf-demo0; in_remote ip addr add 10.77.0.1/24 dev pf-demo1
in_pod ip -6 addr add fd77::2/64 dev pf-demo0 nodad; in_remote ip -6 addr add fd77::1/64 dev pf-demo1 nodad
in_pod ip link set pf-demo0 up; in_remote ip link set pf-demo1 up
in_pod ip route add default via 10.77.0.1; in_pod ip -6 route add default via fd77::1

step "the init container: pilotfish istio-iptables (Istio's injector flags, dual stack)"
set -x
in_pod "$bin" istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020 --dual-stack
{ set +x; } 2>/dev/null
in_pod nft list table inet pilotfish-nat | sed -n '1,12p'; echo "  ..."

step "re-running the init step changes nothing"
in_pod "$bin" istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d 15090,15021,15020 --dual-stack

step "the sidecar: pilotfish proxy sidecar (the agent) starts pilotfish-proxy as uid 1337 — no istiod"
cat > /tmp/pf-demo-pod.json <<'JSON'
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "demo-app", "namespace": "default", "labels": {"app": "demo"}},
 "spec": {"serviceAccountName": "demo", "containers": [{"name": "app", "image": "demo", "ports": [{"containerPort": 8080}]}]},
 "status": {"podIP": "10.77.0.2", "podIPs": [{"ip": "10.77.0.2"}, {"ip": "fd77::2"}]}}
JSON
sidecar_dir=$(mktemp -d /tmp/pf-demo-sidecar.XXXXXX); chmod 755 "$sidecar_dir"
ca_dir=$(mktemp -d /tmp/pf-demo-ca.XXXXXX)
(cd "$sidecar_dir" && PROXY_CONFIG='{"terminationDrainDuration": "1s"}' OUTPUT_CERTS=./certs \
  exec ip netns exec "$pod" "$bin" proxy sidecar --pod-metadata /tmp/pf-demo-pod.json --concurrency 1 \
  --local-ca-dir "$ca_dir" > /tmp/pf-demo-sidecar.log 2>&1) & pids+=($!)
for _ in $(seq 150); do [ "$(in_pod curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:15021/healthz/ready)" = 200 ] && break; sleep 0.1; done
echo "  :15021/healthz/ready (proxy -> agent): $(in_pod curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:15021/healthz/ready)"
echo "  proxy process: $(ps -o user=,args= -C pilotfish-proxy | cut -c1-110)"
in_pod curl -s 127.0.0.1:15000/listeners | sed 's/^/  listener /'

step "workload identity: the agent's SDS socket, certificates from the local CA (no istiod)"
for _ in $(seq 50); do [ -s "$sidecar_dir/certs/cert-chain.pem" ] && break; sleep 0.1; done
echo "  SDS socket: $(stat -c '%A uid=%u' "$sidecar_dir/var/run/secrets/workload-spiffe-uds/socket") (owner-only, the proxy's uid)"
echo "  $(openssl x509 -noout -ext subjectAltName -in "$sidecar_dir/certs/cert-chain.pem" | tail -1 | sed 's/^ *//')"
echo "  $(openssl x509 -noout -enddate -in "$sidecar_dir/certs/cert-chain.pem") (rotated at half-life, pushed over SDS)"
echo "  $(cd "$sidecar_dir/certs" && openssl verify -CAfile root-cert.pem cert-chain.pem) against the local CA in $ca_dir"

step "servers: the app on 8080 in the pod, a server on 8080 on the remote host"
in_pod "$py" "$echo_py" serve --tcp 8080 --seconds 60 > /tmp/pf-demo-pod.log & pids+=($!)
in_remote "$py" "$echo_py" serve --tcp 8080 --seconds 60 > /tmp/pf-demo-remote.log & pids+=($!)
for _ in $(seq 50); do grep -q ready /tmp/pf-demo-pod.log 2>/dev/null && grep -q ready /tmp/pf-demo-remote.log 2>/dev/null && break; sleep 0.1; done

show() { printf '  %-58s -> %s\n' "$1" "$(shift; "$@" || true)"; }
step "traffic through the proxy (the server prints: port=<its port> orig=<destination> peer=<source>)"
show "app (uid 1000) -> 10.77.0.1:8080 (outbound, passthrough)" in_pod setpriv --reuid 1000 --regid 1000 --clear-groups "$py" "$echo_py" connect 10.77.0.1 8080
show "app (uid 1000) -> [fd77::1]:8080 (outbound, passthrough)" in_pod setpriv --reuid 1000 --regid 1000 --clear-groups "$py" "$echo_py" connect fd77::1 8080
show "remote -> pod 10.77.0.2:8080 (inbound, from 127.0.0.6)" in_remote "$py" "$echo_py" connect 10.77.0.2 8080
show "remote -> pod [fd77::2]:8080 (inbound, from ::6)" in_remote "$py" "$echo_py" connect fd77::2 8080
show "remote -> pod :15020/healthz/ready (the agent; -d exempts it)" in_remote curl -s -o /dev/null -w '%{http_code}' http://10.77.0.2:15020/healthz/ready

step "merged metrics on :15090 (agent + proxy), and the proxy's admin API"
in_pod curl -s 127.0.0.1:15090/stats/prometheus | grep -E '^(istio_agent_proxy_restarts_total|envoy_server_state|envoy_listener_manager_workers_started)' | sed 's/^/  /'
in_pod curl -s '127.0.0.1:15000/clusters' | grep -E '::(cx_total|cx_connect_fail)::[1-9]' | sed 's/^/  /'
in_pod curl -s '127.0.0.1:15000/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)' | sed 's/^/  /'

step "dry run: what would change for a new config (TPROXY inbound)"
in_pod "$bin" istio-iptables -p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -b '*' -d 15090,15021,15020 --dual-stack --dry-run | grep -E '^(#|\+|-)' | head -20
echo "  ..."

step "SIGTERM to the agent: drain inbound listeners, stop the proxy, exit"
kill -TERM "${pids[0]}"; wait "${pids[0]}" && echo "  agent exited 0"
grep -E 'drain|stopp|exit' /tmp/pf-demo-sidecar.log | tail -4 | cut -c1-150 | sed 's/^/  log: /'
rm -rf "$sidecar_dir" "$ca_dir"

step "cleanup: pilotfish istio-iptables --cleanup-only"
in_pod "$bin" istio-iptables --cleanup-only
echo "  nft tables left in the pod: $(in_pod nft list tables | wc -l)"

step "the injector: pilotfish inject adds the init and proxy containers to deploy/samples/httpbin.yaml"
"$bin" inject -f deploy/samples/httpbin.yaml > /tmp/pf-demo-injected.yaml
grep -nE 'name: istio-(init|proxy)$|^ *- (istio-iptables|proxy)$' /tmp/pf-demo-injected.yaml | sed 's/^/  /'
# Compare as data (comments and indentation are not kept): both sides printed by pilotfish.
same=$(diff -q <("$bin" inject --uninject -f /tmp/pf-demo-injected.yaml) \
  <("$bin" inject --uninject -f deploy/samples/httpbin.yaml) >/dev/null && echo yes || echo no)
echo "  --uninject gives back the original: $same"
