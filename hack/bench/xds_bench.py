#!/usr/bin/env python3
"""xDS push cost of pilotfish-proxy for a mesh-sized config. Called by hack/bench-xds.sh.

For each size N (clusters) and each ADS variant (delta, Istio's default, and state of the world), a fresh
proxy (`--concurrency 1`) connects over a Unix socket to the grpcio control plane of the tests
(Tests/Helpers/xds_control_plane.py, run with --timing). A first, small push makes it live: the passthrough
and blackhole clusters and one listener `live` on 127.0.0.1 whose HCM takes its route table `live` (a
direct response) from RDS. Then one push brings the mesh, in istiod's shapes (as in
Tests/ProxyServerTests/Golden/istiod-push, without Istio's own filter types, which Python cannot encode):

  - N outbound EDS clusters (auto-mTLS transport_socket_matches, circuit breakers, metadata), each with a
    ClusterLoadAssignment of 3 endpoints in one locality;
  - 200 per-port listeners 0.0.0.0_<port> (`bind_to_port: false`, listener filters, an HCM on RDS "<port>",
    a tcp_proxy default chain);
  - 200 route tables "<port>": a virtual host per service on that port (N/200 of them, at least one) with
    istiod's domains, retry policy and decorator, and the allow_any catch-all;

all staged in the control plane first (Python's JSON parsing is not timed), then pushed in istiod's order:
CDS, then LDS; EDS and RDS answer the proxy's subscriptions. Recorded from the control plane's events
(CLOCK_MONOTONIC, so comparable with this process): for each type the time from the push to its ACK; the
time Python took to serialize each response (`serialize_ms`; gRPC serializes it once more to send it, so the
time to ACK includes about that much of the control plane's own work, shown separately); the proxy's CPU
time (user+system from /proc/PID/stat) from the push to the last ACK; its RSS after; its idle CPU after.
Then one endpoint of one cluster changes: delta sends that one ClusterLoadAssignment, state of the world
all N again; the same figures are recorded.

A separate run per size and variant keeps HTTP traffic on the live listener at a fixed rate (`hey -q`,
per-request timings with `-o csv`) through the whole push, and reports p50/p99 of the requests sent before
the push against those sent while it was being applied.
"""
import argparse
import csv
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxy_bench import cpu_seconds as cpu_seconds_ticks, free_port, rss_kib  # noqa: E402

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SHORT = {CDS: "CDS", EDS: "EDS", LDS: "LDS", RDS: "RDS"}
ORDER = [CDS, EDS, LDS, RDS]
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PLANE = os.path.join(ROOT, "Tests", "Helpers", "xds_control_plane.py")
LISTENERS = 200
FIRST_PORT = 10000
ENDPOINTS = 3
PASSTHROUGH = "PassthroughCluster"


def cpu_seconds(pid):
    """The process's CPU time (user+system) in nanosecond resolution: the sum of its threads' run time from
    /proc/PID/task/*/schedstat (/proc/PID/stat counts 10 ms ticks, too coarse for one small update). Falls
    back to the ticks."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return cpu_seconds_ticks(pid)
    return total / 1e9 if total else cpu_seconds_ticks(pid)


# MARK: Resources, in istiod's shapes

def http_options():
    return {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}}


def breakers():
    big = 4294967295
    return {"thresholds": [{"max_connections": big, "max_pending_requests": big, "max_requests": big,
                            "max_retries": big, "track_remaining": True}]}


def sds(name):
    return {"name": name, "sds_config": {
        "api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                              "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
                              "set_node_on_first_message_only": True},
        "initial_fetch_timeout": "0s", "resource_api_version": "V3"}}


def service(i):
    """(short name, namespace, port) of service i: ports cycle over the listeners' ports."""
    return f"svc{i}", f"ns{i % 20}", FIRST_PORT + i % LISTENERS


def host(i):
    name, namespace, _ = service(i)
    return f"{name}.{namespace}.svc.cluster.local"


def cluster_name(i):
    return f"outbound|{service(i)[2]}||{host(i)}"


def base_clusters():
    return [
        {"@type": CDS, "name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"},
        {"@type": CDS, "name": PASSTHROUGH, "type": "ORIGINAL_DST", "connect_timeout": "10s",
         "lb_policy": "CLUSTER_PROVIDED", "circuit_breakers": breakers(),
         "typed_extension_protocol_options": http_options()},
    ]


def cluster(i):
    name, namespace, port = service(i)
    return {
        "@type": CDS, "name": cluster_name(i), "type": "EDS",
        "eds_cluster_config": {"eds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
                               "service_name": cluster_name(i)},
        "connect_timeout": "10s", "lb_policy": "LEAST_REQUEST",
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "circuit_breakers": breakers(), "typed_extension_protocol_options": http_options(),
        "metadata": {"filter_metadata": {"istio": {"services": [
            {"host": host(i), "name": name, "namespace": namespace}]}}},
        "transport_socket_matches": [
            {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": {
                "name": "envoy.transport_sockets.tls", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": f"outbound_.{port}_._.{host(i)}",
                    "common_tls_context": {
                        "alpn_protocols": ["istio-peer-exchange", "istio"],
                        "tls_params": {"tls_minimum_protocol_version": "TLSv1_2",
                                       "tls_maximum_protocol_version": "TLSv1_3"},
                        "tls_certificate_sds_secret_configs": [sds("default")],
                        "combined_validation_context": {
                            "default_validation_context": {"match_subject_alt_names": [
                                {"exact": f"spiffe://cluster.local/ns/{namespace}/sa/{name}"}]},
                            "validation_context_sds_secret_config": sds("ROOTCA")}}}}},
            {"name": "tlsMode-disabled", "match": {}, "transport_socket": {
                "name": "envoy.transport_sockets.raw_buffer",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}},
        ],
    }


def load_assignment(i, changed=False):
    name, namespace, port = service(i)
    endpoints = []
    for k in range(ENDPOINTS):
        address = f"10.{(i >> 8) & 255}.{i & 255}.{10 + k + (100 if changed and k == 0 else 0)}"
        endpoints.append({
            "endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}},
            "health_status": "HEALTHY", "load_balancing_weight": 1,
            "metadata": {"filter_metadata": {
                "envoy.transport_socket_match": {"tlsMode": "istio"},
                "istio": {"workload": f"{name}-v{k};{namespace};{name};v{k};Kubernetes"}}}})
    return {"@type": EDS, "cluster_name": cluster_name(i),
            "endpoints": [{"locality": {"region": "europe-west1", "zone": "europe-west1-b"},
                           "load_balancing_weight": 1, "lb_endpoints": endpoints}],
            "policy": {"overprovisioning_factor": 140}}


def hcm(stat_prefix, route_name):
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix, "codec_type": "AUTO", "server_name": "istio-envoy",
            "use_remote_address": False, "normalize_path": True,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED", "stream_idle_timeout": "0s",
            "upgrade_configs": [{"upgrade_type": "websocket"}],
            "request_id_extension": {"typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                "use_request_id_for_trace_sampling": True}},
            "rds": {"route_config_name": route_name,
                    "config_source": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}},
            "http_filters": [
                {"name": "envoy.filters.http.grpc_stats", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                    "emit_filter_state": True, "stats_for_all_methods": False}},
                {"name": "envoy.filters.http.fault", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                {"name": "envoy.filters.http.cors", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
                router]}}


def passthrough_chain():
    return {"name": "PassthroughFilterChain", "filters": [{
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                         "stat_prefix": PASSTHROUGH, "cluster": PASSTHROUGH}}]}


def port_listener(j):
    port = FIRST_PORT + j
    name = f"0.0.0.0_{port}"
    return {
        "@type": LDS, "name": name, "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
        "bind_to_port": False, "traffic_direction": "OUTBOUND", "listener_filters_timeout": "0s",
        "continue_on_listener_filters_timeout": True,
        "listener_filters": [
            {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}},
            {"name": "envoy.filters.listener.http_inspector", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}],
        "filter_chains": [{"filter_chain_match": {"transport_protocol": "raw_buffer",
                                                  "application_protocols": ["http/1.1", "h2c"]},
                           "name": name, "filters": [hcm(f"outbound_{name}", str(port))]}],
        "default_filter_chain": passthrough_chain(),
    }


def live_listener(port):
    return {"@type": LDS, "name": "live", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [hcm("live", "live")]}]}


def live_routes():
    return {"@type": RDS, "name": "live", "virtual_hosts": [{
        "name": "live", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]}


def route_table(j, services):
    port = FIRST_PORT + j
    hosts = []
    for i in services:
        name, namespace, _ = service(i)
        hosts.append({
            "name": f"{host(i)}:{port}",
            "domains": [host(i), name, f"{name}.{namespace}.svc", f"{name}.{namespace}",
                        f"10.96.{(i >> 8) & 255}.{i & 255}"],
            "include_request_attempt_count": True,
            "routes": [{"name": "default", "match": {"prefix": "/"},
                        "route": {"cluster": cluster_name(i), "timeout": "0s",
                                  "retry_policy": {
                                      "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                                      "num_retries": 2,
                                      "retry_host_predicate": [{
                                          "name": "envoy.retry_host_predicates.previous_hosts",
                                          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                                      "host_selection_retry_max_attempts": 5},
                                  "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}},
                        "decorator": {"operation": f"{host(i)}:{port}/*"}}]})
    hosts.append({"name": "allow_any", "domains": ["*"], "include_request_attempt_count": True,
                  "routes": [{"name": "allow_any", "match": {"prefix": "/"},
                              "route": {"cluster": PASSTHROUGH, "timeout": "0s", "max_grpc_timeout": "0s"}}]})
    return {"@type": RDS, "name": str(port), "validate_clusters": False, "ignore_port_in_host_matching": True,
            "virtual_hosts": hosts}


MESHES = {}


def mesh(n, live_port):
    """The big push for n clusters: {type_url: [resources]}; the live listener and its routes stay as they were."""
    if n not in MESHES:
        MESHES.clear()
        MESHES[n] = make_mesh(n)
    made = MESHES[n]
    return dict(made, **{LDS: [live_listener(live_port)] + made[LDS][1:]})


def make_mesh(n):
    by_port = {j: [i for i in range(n) if i % LISTENERS == j] or [j % n] for j in range(LISTENERS)}
    return {
        CDS: base_clusters() + [cluster(i) for i in range(n)],
        EDS: [load_assignment(i) for i in range(n)],
        LDS: [None] + [port_listener(j) for j in range(LISTENERS)],
        RDS: [live_routes()] + [route_table(j, by_port[j]) for j in range(LISTENERS)],
    }


# MARK: Processes

class ControlPlane:
    """Tests/Helpers/xds_control_plane.py with --timing; every event is kept, with its index."""

    def __init__(self, workdir):
        self.socket = os.path.join(workdir, "xds.sock")
        self.stderr = open(os.path.join(workdir, "control-plane.log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-u", PLANE, self.socket, "--timing"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1)
        self.events = []
        self.cond = threading.Condition()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda e: e["event"] == "ready", 0, 30, "control plane ready")

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "exited", "t": time.monotonic()})
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.events)

    def wait(self, predicate, start, timeout, what):
        """The index of the first event at or after `start` that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    if event["event"] == "exited":
                        sys.exit(f"bench: the control plane exited while waiting for {what}")
                    if predicate(event):
                        return index
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    sys.exit(f"bench: timed out after {timeout} s waiting for {what}")
                self.cond.wait(left)

    def since(self, start):
        with self.cond:
            return list(self.events[start:])

    def command(self, command, timeout=600):
        self.next_id += 1
        command = dict(command, id=self.next_id)
        start = self.mark()
        self.proc.stdin.write(json.dumps(command, separators=(",", ":")) + "\n")
        self.proc.stdin.flush()
        ident = self.next_id
        index = self.wait(lambda e: e.get("id") == ident and e["event"] in ("done", "error"), start, timeout,
                          f"command {command['cmd']}")
        event = self.events[index]
        if event["event"] == "error":
            sys.exit(f"bench: control plane command {command['cmd']} failed: {event['message']}")

    def stage(self, type_url, version, resources):
        self.command({"cmd": "set", "type_url": type_url, "version": version, "resources": resources, "push": False})

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


class Proxy:
    def __init__(self, binary, workdir, api, socket_path, concurrency, live_port):
        self.admin = free_port()
        self.live_port = live_port
        conf = os.path.join(workdir, f"bootstrap-{api}.yaml")
        with open(conf, "w") as f:
            f.write(f"""admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {self.admin}}}}}
node: {{id: "sidecar~10.0.0.1~app.default~default.svc.cluster.local", cluster: app.default}}
dynamic_resources:
  ads_config:
    api_type: {api}
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds-grpc}}}}]
    set_node_on_first_message_only: true
  cds_config: {{ads: {{}}, initial_fetch_timeout: 0s, resource_api_version: V3}}
  lds_config: {{ads: {{}}, initial_fetch_timeout: 0s, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds-grpc
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{pipe: {{path: {socket_path}}}}}}}}}]}}]
""")
        self.log = open(os.path.join(workdir, f"proxy-{api}.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", conf, "--concurrency", str(concurrency), "-l", "warning",
                                      "--drain-time-s", "1"], stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def get(self, path, timeout=2.0):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"bench: pilotfish-proxy exited with {self.proc.returncode} (see {self.log.name})")
            try:
                if self.get("/ready", 0.5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        sys.exit("bench: pilotfish-proxy did not become ready")

    def stats(self, *names):
        _, text = self.get("/stats")
        values = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if name in names:
                values[name] = value.strip()
        return values

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Load:
    """hey at a fixed rate against `url`, every request's start offset and latency kept (-o csv)."""

    def __init__(self, url, rate, connections=10):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["hey", "-z", "600s", "-c", str(connections), "-q",
                                      str(max(1, rate // connections)), "-o", "csv", url],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop(self):
        """[(start, latency s, status)] with `start` on this process's monotonic clock."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=30)
        rows = []
        for row in csv.DictReader(io.StringIO(out)):
            try:
                rows.append((self.started + float(row["offset"]), float(row["response-time"]),
                             int(row["status-code"])))
            except (KeyError, ValueError):
                continue
        return rows


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# MARK: One push, measured

def push_and_wait(plane, proxy, types, expect, timeout):
    """Pushes the staged snapshots of `types` (the others follow the proxy's subscriptions) and waits until
    every type in `expect` has been answered and every response sent since has been ACKed. Returns the
    figures: per type the time from the first response to its last ACK (`ack_ms`; the control plane's work
    before that, such as diffing the snapshot, is `python_before_ms`), from its own last response to its ACK
    (`own_ms`) and Python's serialization time; the time to the last ACK; the proxy's CPU from the push
    command to the last ACK."""
    start = plane.mark()
    cpu0, ticks0 = cpu_seconds(proxy.pid), cpu_seconds_ticks(proxy.pid)
    t0 = time.monotonic()
    plane.command({"cmd": "push", "type_urls": types})
    deadline = time.monotonic() + timeout
    while True:
        events = plane.since(start)
        responses = [e for e in events if e["event"] == "response"]
        requests = [e for e in events if e["event"] == "request"]
        acks = {}
        for request in requests:
            if request.get("response_nonce"):
                acks[request["response_nonce"]] = request
        nacks = [r for r in requests if r.get("error_detail")]
        if nacks:
            sys.exit(f"bench: the proxy NACKed {SHORT.get(nacks[0]['type_url'])}: {nacks[0]['error_detail']}")
        answered = {r["type_url"] for r in responses}
        pending = [r for r in responses if r["nonce"] not in acks]
        if not pending and all(t in answered for t in expect):
            cpu1, ticks1 = cpu_seconds(proxy.pid), cpu_seconds_ticks(proxy.pid)
            # Nothing more on the way? (a subscription can follow an ACK)
            settle = plane.mark()
            time.sleep(0.3)
            if not any(e["event"] == "response" for e in plane.since(settle)):
                break
        if time.monotonic() > deadline:
            sys.exit(f"bench: push not ACKed within {timeout} s "
                     f"(pending {[SHORT.get(r['type_url']) for r in pending]})")
        time.sleep(0.005)
    figures = {"types": {}, "cpu_ms": (cpu1 - cpu0) * 1000, "cpu_ms_ticks": (ticks1 - ticks0) * 1000}
    first = min(r["t"] for r in responses)
    figures["python_before_ms"] = (first - t0) * 1000
    t0 = first
    last = t0
    for type_url in ORDER:
        mine = [r for r in responses if r["type_url"] == type_url]
        if not mine:
            continue
        ack = acks[mine[-1]["nonce"]]
        last = max(last, ack["t"])
        figures["types"][SHORT[type_url]] = {
            "ack_ms": (ack["t"] - t0) * 1000,
            "own_ms": (ack["t"] - mine[-1]["t"]) * 1000,
            "serialize_ms": sum(r.get("serialize_ms", 0) for r in mine),
            "bytes": sum(r.get("bytes", 0) for r in mine),
            "responses": len(mine),
            "resources": sum(len(r["resources"]) for r in mine),
        }
    figures["all_ms"] = (last - t0) * 1000
    figures["serialize_ms"] = sum(t["serialize_ms"] for t in figures["types"].values())
    figures["t0"], figures["t_end"] = t0, last
    return figures


def start(plane, binary, workdir, api, n, concurrency):
    """A fresh proxy, live with the small first push; the mesh staged for the next. The control plane is
    shared by the runs (it parses each distinct resource once): its snapshots are reset first."""
    live_port = free_port()
    plane.command({"cmd": "set", "type_url": EDS, "version": "1", "resources": [], "push": False})
    plane.command({"cmd": "set", "type_url": RDS, "version": "1", "resources": [live_routes()], "push": False})
    plane.command({"cmd": "set", "type_url": CDS, "version": "1", "resources": base_clusters(), "push": False})
    plane.command({"cmd": "set", "type_url": LDS, "version": "1", "resources": [live_listener(live_port)],
                   "push": False})
    mark = plane.mark()
    proxy = Proxy(binary, workdir, api, plane.socket, concurrency, live_port)
    try:
        plane.wait(lambda e: e["event"] == "stream_opened", mark, 30, "the proxy's ADS stream")
        proxy.wait_ready()
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy.live_port}/", timeout=5) as r:
            if r.read() != b"ok":
                sys.exit("bench: the live listener does not answer")
        time.sleep(0.5)
        config = mesh(n, proxy.live_port)
        staged = time.monotonic()
        for type_url in [EDS, RDS, CDS, LDS]:
            plane.stage(type_url, "2", config[type_url])
        return proxy, time.monotonic() - staged
    except BaseException:
        proxy.stop()
        raise


def check_applied(proxy, n):
    stats = proxy.stats("cluster_manager.active_clusters", "cluster_manager.warming_clusters",
                        "listener_manager.total_listeners_active", "listener_manager.total_listeners_warming")
    expected = {"cluster_manager.active_clusters": str(n + 3), "cluster_manager.warming_clusters": "0",
                "listener_manager.total_listeners_warming": "0"}
    wrong = {k: (stats.get(k), v) for k, v in expected.items() if stats.get(k) != v}
    if wrong:
        print(f"bench: after the push (got, expected): {wrong}", file=sys.stderr)
    return stats


def quiet_run(plane, binary, workdir, api, n, args, perf_path=None):
    proxy, staging = start(plane, binary, workdir, api, n, args.concurrency)
    try:
        result = {"staging_s": staging, "rss_before_kib": rss_kib(proxy.pid),
                  "anon_before_kib": rss_kib(proxy.pid, "RssAnon")}
        perf = None
        if perf_path:
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-p", str(proxy.pid), "-o", perf_path],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        result["full"] = push_and_wait(plane, proxy, [CDS, LDS], ORDER, args.timeout)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        time.sleep(0.5)
        stats = check_applied(proxy, n)
        result["listeners_active"] = stats.get("listener_manager.total_listeners_active")
        result["rss_after_kib"] = rss_kib(proxy.pid)
        result["anon_after_kib"] = rss_kib(proxy.pid, "RssAnon")
        cpu0 = cpu_seconds(proxy.pid)
        time.sleep(args.idle)
        result["idle_cpu_ms_per_s"] = (cpu_seconds(proxy.pid) - cpu0) * 1000 / args.idle
        # One endpoint of one cluster changes, and back, `--changes` times.
        if perf_path:
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "4999", "-p", str(proxy.pid), "-o",
                                     perf_path.replace(".data", "-one-endpoint.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        changes = []
        for k in range(args.changes):
            plane.stage(EDS, f"3.{k}", [load_assignment(i, changed=(i == n // 2 and k % 2 == 0)) for i in range(n)])
            time.sleep(0.2)
            changes.append(push_and_wait(plane, proxy, [EDS], [EDS], args.timeout))
            if k == 0:
                _, clusters = proxy.get("/clusters")
                address = f"10.{((n // 2) >> 8) & 255}.{(n // 2) & 255}.110"
                if f"{cluster_name(n // 2)}::{address}:" not in clusters:
                    print(f"bench: the changed endpoint {address} is not in /clusters", file=sys.stderr)
        if perf_path:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        result["one_endpoint_changes"] = changes
        result["one_endpoint"] = {
            "all_ms": statistics.median(c["all_ms"] for c in changes),
            "cpu_ms": statistics.median(c["cpu_ms"] for c in changes),
            "serialize_ms": statistics.median(c["serialize_ms"] for c in changes),
            "python_before_ms": statistics.median(c["python_before_ms"] for c in changes),
            "types": {"EDS": changes[0]["types"]["EDS"]},
        }
        return result
    finally:
        proxy.stop()


def traffic_run(plane, binary, workdir, api, n, args):
    proxy, _ = start(plane, binary, workdir, api, n, args.concurrency)
    try:
        load = Load(f"http://127.0.0.1:{proxy.live_port}/", args.rate)
        time.sleep(args.before + 0.5)
        full = push_and_wait(plane, proxy, [CDS, LDS], ORDER, args.timeout)
        time.sleep(0.5)
        rows = load.stop()
    finally:
        proxy.stop()
    before = [lat for t, lat, _ in rows if load.started + 0.5 <= t < full["t0"]]
    during = [lat for t, lat, _ in rows if full["t0"] <= t <= full["t_end"]]
    failed = sum(1 for _, _, status in rows if status != 200)
    return {
        "before": {"p50_ms": percentile(before, 50) * 1000, "p99_ms": percentile(before, 99) * 1000,
                   "requests": len(before)},
        "during": {"p50_ms": percentile(during, 50) * 1000, "p99_ms": percentile(during, 99) * 1000,
                   "max_ms": max(during) * 1000 if during else float("nan"), "requests": len(during)},
        "failed": failed, "push_all_ms": full["all_ms"],
    }


# MARK: Report

def med(runs, *path):
    values = []
    for run in runs:
        v = run
        for key in path:
            v = v[key]
        values.append(v)
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--clusters", default="100,1000,5000", help="sizes, comma-separated")
    parser.add_argument("--variants", default="delta,sotw")
    parser.add_argument("--runs", type=int, default=3, help="quiet runs (no traffic) per size and variant")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s of HTTP traffic during the push")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of traffic before the push")
    parser.add_argument("--changes", type=int, default=5,
                        help="one-endpoint changes per run (median taken); the endpoint changes and changes back")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds to measure idle CPU after the push")
    parser.add_argument("--no-traffic", action="store_true", help="skip the runs with HTTP traffic")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--perf", metavar="DIR", help="perf record -g the proxy during the largest full push")
    parser.add_argument("--json", metavar="FILE", help="write every run's figures here ('-': stdout)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.clusters.split(",")]
    apis = {"delta": "DELTA_GRPC", "sotw": "GRPC"}
    variants = [v.strip() for v in args.variants.split(",")]
    if shutil_which("hey") is None and not args.no_traffic:
        print("bench: hey not installed: skipping the runs with traffic", file=sys.stderr)
        args.no_traffic = True

    workdir = tempfile.mkdtemp(prefix="pf-xds-bench-")
    plane = ControlPlane(workdir)
    try:
        results = measure(plane, args, workdir, sizes, variants, apis)
    finally:
        plane.stop()
    report(args, results, variants)


def measure(plane, args, workdir, sizes, variants, apis):
    results = {}
    for n in sizes:
        for variant in variants:
            key = f"{variant} {n}"
            entry = results.setdefault(key, {"variant": variant, "clusters": n, "runs": []})
            for run in range(args.runs):
                perf_path = None
                if args.perf and n == max(sizes) and run == 0:
                    os.makedirs(args.perf, exist_ok=True)
                    perf_path = os.path.join(args.perf, f"perf-{variant}-{n}.data")
                r = quiet_run(plane, args.proxy, workdir, apis[variant], n, args, perf_path)
                entry["runs"].append(r)
                f, o = r["full"], r["one_endpoint"]
                acks = " ".join("%s %.0f" % (t, v["ack_ms"]) for t, v in f["types"].items())
                print(f"{key} run {run + 1}: full push ACKed in {f['all_ms']:.0f} ms "
                      f"({acks}), "
                      f"python serialize {f['serialize_ms']:.0f} ms, proxy CPU {f['cpu_ms']:.0f} ms, "
                      f"RSS {r['rss_after_kib'] / 1024:.1f} MiB (anon {r['anon_after_kib'] / 1024:.1f}), "
                      f"idle {r['idle_cpu_ms_per_s']:.1f} ms/s; one endpoint: EDS ACK {o['all_ms']:.1f} ms, "
                      f"CPU {o['cpu_ms']:.1f} ms, {o['types']['EDS']['resources']} resources sent "
                      f"(staging took {r['staging_s']:.1f} s)", file=sys.stderr)
            if not args.no_traffic:
                t = traffic_run(plane, args.proxy, workdir, apis[variant], n, args)
                entry["traffic"] = t
                print(f"{key} traffic: before p50 {t['before']['p50_ms']:.2f} p99 {t['before']['p99_ms']:.2f} ms "
                      f"({t['before']['requests']}), during p50 {t['during']['p50_ms']:.2f} "
                      f"p99 {t['during']['p99_ms']:.2f} max {t['during']['max_ms']:.1f} ms "
                      f"({t['during']['requests']}), push {t['push_all_ms']:.0f} ms, {t['failed']} non-200",
                      file=sys.stderr)
    return results


def report(args, results, variants):
    print()
    print(f"xDS push cost: N EDS clusters (+3 static/base), {LISTENERS} listeners (bind_to_port false, HCM on RDS), "
          f"{LISTENERS} route tables; --concurrency {args.concurrency}; medians of {args.runs} runs")
    print(f"{'variant':8} {'clusters':>8} {'CDS ack':>8} {'EDS ack':>8} {'LDS ack':>8} {'RDS ack':>8} "
          f"{'all ms':>8} {'py ser':>7} {'CPU ms':>8} {'µs/clus':>8} {'RSS MiB':>8} {'anon':>6} {'idle':>6} | "
          f"{'1-ep ack':>8} {'1-ep CPU':>8} {'full/1-ep':>9}")
    for key, entry in results.items():
        runs = entry["runs"]
        n = entry["clusters"]

        def ack(t):
            try:
                return f"{med(runs, 'full', 'types', t, 'ack_ms'):8.0f}"
            except KeyError:
                return f"{'–':>8}"

        cpu = med(runs, "full", "cpu_ms")
        one_cpu = med(runs, "one_endpoint", "cpu_ms")
        entry["median"] = {
            "full_all_ms": med(runs, "full", "all_ms"), "full_cpu_ms": cpu,
            "full_serialize_ms": med(runs, "full", "serialize_ms"),
            "rss_after_mib": med(runs, "rss_after_kib") / 1024, "anon_after_mib": med(runs, "anon_after_kib") / 1024,
            "idle_cpu_ms_per_s": med(runs, "idle_cpu_ms_per_s"),
            "one_endpoint_ack_ms": med(runs, "one_endpoint", "all_ms"), "one_endpoint_cpu_ms": one_cpu,
            "one_endpoint_serialize_ms": med(runs, "one_endpoint", "serialize_ms"),
            "full_to_one_endpoint_cpu": cpu / one_cpu if one_cpu > 0 else float("inf"),
        }
        ratio = f"{cpu / one_cpu:9.0f}" if one_cpu > 0 else f"{'>' + str(int(cpu)):>9}"
        print(f"{entry['variant']:8} {n:8} {ack('CDS')} {ack('EDS')} {ack('LDS')} {ack('RDS')} "
              f"{med(runs, 'full', 'all_ms'):8.0f} {med(runs, 'full', 'serialize_ms'):7.0f} {cpu:8.0f} "
              f"{cpu * 1000 / n:8.0f} {med(runs, 'rss_after_kib') / 1024:8.1f} {med(runs, 'anon_after_kib') / 1024:6.1f} "
              f"{med(runs, 'idle_cpu_ms_per_s'):6.1f} | {med(runs, 'one_endpoint', 'all_ms'):8.1f} {one_cpu:8.1f} {ratio}")
    print("  ack: ms from the first response to that type's ACK; all: to the last ACK; py ser: Python's own serialization of "
          "the responses (in 'all', not the proxy's); CPU: the proxy's user+system from the push to the last ACK; "
          "idle: the proxy's CPU ms per second after the push; 1-ep: one endpoint of one cluster changed "
          "(EDS ACK ms, CPU ms; medians of --changes); CPU from the threads' schedstat run times")
    print()
    print("growth (CPU of the full push; linear is ×size):")
    for variant in variants:
        rows = [e for e in results.values() if e["variant"] == variant]
        for a, b in zip(rows, rows[1:]):
            grow = b["median"]["full_cpu_ms"] / a["median"]["full_cpu_ms"] if a["median"]["full_cpu_ms"] else float("nan")
            grow_t = b["median"]["full_all_ms"] / a["median"]["full_all_ms"] if a["median"]["full_all_ms"] else float("nan")
            print(f"  {variant:6} {a['clusters']:5} → {b['clusters']:5} clusters (×{b['clusters'] / a['clusters']:.0f}): "
                  f"CPU ×{grow:.2f}, time to last ACK ×{grow_t:.2f}, one-endpoint CPU "
                  f"{a['median']['one_endpoint_cpu_ms']:.1f} → {b['median']['one_endpoint_cpu_ms']:.1f} ms")
    if any("traffic" in e for e in results.values()):
        print()
        print(f"HTTP on the live listener during the push (hey -c 10, {args.rate} requests/s, direct response):")
        for key, entry in results.items():
            t = entry.get("traffic")
            if not t:
                continue
            print(f"  {key:12} before p50 {t['before']['p50_ms']:5.2f} p99 {t['before']['p99_ms']:6.2f} ms  |  during "
                  f"({t['during']['requests']} requests in {t['push_all_ms']:.0f} ms) p50 {t['during']['p50_ms']:5.2f} "
                  f"p99 {t['during']['p99_ms']:6.2f} max {t['during']['max_ms']:6.1f} ms"
                  + (f"  ({t['failed']} non-200)" if t["failed"] else ""))
    if args.json:
        for entry in results.values():
            for run in entry["runs"]:
                for phase in [run["full"]] + run["one_endpoint_changes"]:
                    phase.pop("t0", None)
                    phase.pop("t_end", None)
        text = json.dumps({"rate": args.rate, "concurrency": args.concurrency, "runs": args.runs,
                           "listeners": LISTENERS, "results": list(results.values())}, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
            print(f"json: {args.json}", file=sys.stderr)


def shutil_which(name):
    import shutil
    return shutil.which(name)


if __name__ == "__main__":
    main()
