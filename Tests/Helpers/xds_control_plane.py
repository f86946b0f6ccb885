#!/usr/bin/env python3
"""A scriptable ADS control plane for tests: grpcio + the official Envoy protos (PyPI xds-protos), serving
StreamAggregatedResources (state of the world) and DeltaAggregatedResources on a Unix socket.

    xds_control_plane.py SOCKET_PATH [--timing]   (SOCKET_PATH "tcp": 127.0.0.1 on a free port, given in the
                                                   ready event)

Driven by JSON commands on stdin, one a line; reports JSON events on stdout, one a line. Each command may
carry an "id", echoed in {"event":"done","id":ID} once the command (and the pushes it causes) is queued.

Commands
  {"cmd":"set","type_url":T,"version":"v2","resources":[{"@type":T,...},...]}
      the snapshot of T becomes exactly these resources (Envoy JSON), at version "v2"; every stream
      subscribed to T gets a push: state of the world the full set it subscribes, delta the resources it
      does not hold at their current version plus removals. With "push":false the snapshot is only staged
      (streams that subscribe T later still get it on their request): a later "push" sends it.
  {"cmd":"push","type_urls":[T,...]}  pushes the current snapshot of each T, in that order, to every stream
      subscribed to it (as "set" does)
  {"cmd":"remove","type_url":T,"version":"v3","names":[...]}   drops names from the snapshot, then pushes
  {"cmd":"raw","response":{...}}  sends this exact DiscoveryResponse / DeltaDiscoveryResponse (proto JSON)
      on every open stream of the kind given by "delta" (default false); "nonce" is assigned if absent
  {"cmd":"close_streams","code":14,"message":"..."}  ends every open stream with that status

Events
  {"event":"ready"}  listening ({"event":"ready","port":P} on TCP)
  {"event":"stream_opened","stream":N,"delta":B} / {"event":"stream_closed","stream":N}
  {"event":"request","stream":N,"delta":B,"type_url":..,"version_info":..,"response_nonce":..,
   "resource_names":[..],"subscribe":[..],"unsubscribe":[..],"initial_resource_versions":{..},"node_id":..,
   "error_detail":{"code":..,"message":..} or null}
  {"event":"response","stream":N,"delta":B,"type_url":..,"version":..,"nonce":..,"resources":[names],
   "removed":[..]}
  {"event":"error","message":..}  a command that could not be carried out
Every event also carries "t": time.monotonic() when it was printed (CLOCK_MONOTONIC, comparable across the
processes of one machine); a request's "t" is taken as soon as gRPC handed it over, a response's once it is
built. With --timing (benchmarks), a response event also has "bytes" and "serialize_ms": the size of the
message and the time Python took to serialize it once (gRPC serializes it again to send it, after "t", so a
client's time to ACK includes about that much of the control plane's own work).

Versions: a resource's version (delta) is the snapshot version at which its content last changed.
Resources are parsed once per distinct JSON text (kept for the life of the process), so a benchmark can set
the same large snapshot again cheaply.
"""
import json
import os
import time
import queue
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import any_pb2, json_format

# Importing the resource modules registers their types for JSON `Any` parsing.
from envoy.config.cluster.v3 import cluster_pb2  # noqa: F401
from envoy.config.endpoint.v3 import endpoint_pb2  # noqa: F401
from envoy.config.listener.v3 import listener_pb2  # noqa: F401
from envoy.config.route.v3 import route_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2  # noqa: F401
# ... and the filter configs listeners carry in their typed_config.
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
# ... and the other Envoy types of istiod's shapes (hack/bench/xds_bench.py pushes them).
from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2  # noqa: F401
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.request_id.uuid.v3 import uuid_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

CLOSE = object()
TIMING = False
out_lock = threading.Lock()
lock = threading.RLock()


def emit(**event):
    event.setdefault("t", time.monotonic())
    with out_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def resource_name(any_message):
    """The name inside a resource: `name`, or `cluster_name` for a ClusterLoadAssignment."""
    from google.protobuf import symbol_database

    type_name = any_message.type_url.split("/")[-1]
    message = symbol_database.Default().GetSymbol(type_name)()
    any_message.Unpack(message)
    for field in ("name", "cluster_name"):
        if field in message.DESCRIPTOR.fields_by_name:
            return getattr(message, field)
    raise ValueError("no name field in " + type_name)


parsed = {}  # JSON text of a resource -> (name, Any)


def parse_resource(item):
    key = json.dumps(item, sort_keys=True, separators=(",", ":"))
    known = parsed.get(key)
    if known is None:
        resource = any_pb2.Any()
        json_format.ParseDict(item, resource)
        known = parsed[key] = (resource_name(resource), resource)
    return known


class Snapshot:
    """One type's resources: name -> (version, Any)."""

    def __init__(self):
        self.version = ""
        self.resources = {}


class Stream:
    def __init__(self, number, delta):
        self.number = number
        self.delta = delta
        self.outbound = queue.Queue()
        self.subscriptions = {}  # type_url -> set of names ("*" = wildcard)
        self.known = {}  # delta: type_url -> {name: version} the client holds
        self.sent_nonce = {}  # state of the world: type_url -> last nonce sent

    def wants(self, type_url, name):
        names = self.subscriptions.get(type_url, set())
        return "*" in names or name in names


class ControlPlane(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self):
        self.snapshots = {}
        self.streams = {}
        self.next_stream = 0
        self.next_nonce = 0

    def nonce(self):
        self.next_nonce += 1
        return "n%d" % self.next_nonce

    # Pushes (called with `lock` held).

    def send(self, stream, response, names, removed=()):
        if not response.nonce:
            response.nonce = self.nonce()
        if not stream.delta:
            stream.sent_nonce[response.type_url] = response.nonce
        timing = {}
        if TIMING:
            started = time.perf_counter()
            size = len(response.SerializeToString())
            timing = dict(bytes=size, serialize_ms=(time.perf_counter() - started) * 1000)
        emit(**timing, event="response", stream=stream.number, delta=stream.delta, type_url=response.type_url,
             version=response.system_version_info if stream.delta else response.version_info,
             nonce=response.nonce, resources=list(names), removed=list(removed))
        stream.outbound.put(response)

    def push(self, stream, type_url, force=False):
        snapshot = self.snapshots.get(type_url)
        if snapshot is None or type_url not in stream.subscriptions:
            return
        if stream.delta:
            known = stream.known.setdefault(type_url, {})
            changed = [(n, v, r) for n, (v, r) in sorted(snapshot.resources.items())
                       if stream.wants(type_url, n) and known.get(n) != v]
            removed = sorted(n for n in known if n not in snapshot.resources)
            if not changed and not removed:
                return
            response = discovery_pb2.DeltaDiscoveryResponse(
                type_url=type_url, system_version_info=snapshot.version, removed_resources=removed)
            for name, version, resource in changed:
                response.resources.add(name=name, version=version, resource=resource)
                known[name] = version
            for name in removed:
                del known[name]
            self.send(stream, response, [n for n, _, _ in changed], removed)
        else:
            chosen = [(n, r) for n, (_, r) in sorted(snapshot.resources.items()) if stream.wants(type_url, n)]
            response = discovery_pb2.DiscoveryResponse(
                type_url=type_url, version_info=snapshot.version, resources=[r for _, r in chosen])
            self.send(stream, response, [n for n, _ in chosen])

    def push_all(self, type_url):
        for stream in list(self.streams.values()):
            self.push(stream, type_url)

    # Requests.

    def on_request(self, stream, request):
        error = None
        if request.HasField("error_detail"):
            error = {"code": request.error_detail.code, "message": request.error_detail.message}
        event = dict(event="request", stream=stream.number, delta=stream.delta, type_url=request.type_url,
                     response_nonce=request.response_nonce, node_id=request.node.id, error_detail=error)
        event["t"] = time.monotonic()
        if stream.delta:
            event.update(version_info="", resource_names=[], subscribe=list(request.resource_names_subscribe),
                         unsubscribe=list(request.resource_names_unsubscribe),
                         initial_resource_versions=dict(request.initial_resource_versions))
        else:
            event.update(version_info=request.version_info, resource_names=list(request.resource_names),
                         subscribe=[], unsubscribe=[], initial_resource_versions={})
        emit(**event)
        with lock:
            if stream.delta:
                self.on_delta_request(stream, request)
            else:
                self.on_sotw_request(stream, request)

    def on_sotw_request(self, stream, request):
        type_url = request.type_url
        names = set(request.resource_names)
        first = type_url not in stream.subscriptions
        if not names and (first or stream.subscriptions[type_url] == {"*"}):
            names = {"*"}  # legacy wildcard: an empty list first, and for as long as it stays empty
        changed = stream.subscriptions.get(type_url) != names
        stream.subscriptions[type_url] = names
        if request.HasField("error_detail"):
            return
        if first or changed or not request.response_nonce:
            self.push(stream, type_url)

    def on_delta_request(self, stream, request):
        type_url = request.type_url
        first = type_url not in stream.subscriptions
        names = stream.subscriptions.setdefault(type_url, set())
        known = stream.known.setdefault(type_url, {})
        if first:
            known.update(request.initial_resource_versions)
            if not request.resource_names_subscribe:
                names.add("*")  # legacy wildcard
        names.update(request.resource_names_subscribe)
        for name in request.resource_names_unsubscribe:
            names.discard(name)
            known.pop(name, None)
        if first or request.resource_names_subscribe:
            self.push(stream, type_url)

    # The two RPCs.

    def serve(self, request_iterator, context, delta):
        with lock:
            self.next_stream += 1
            stream = Stream(self.next_stream, delta)
            self.streams[stream.number] = stream
        emit(event="stream_opened", stream=stream.number, delta=delta)

        def read():
            try:
                for request in request_iterator:
                    self.on_request(stream, request)
            except Exception:  # the stream ended under us
                pass
            stream.outbound.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                item = stream.outbound.get()
                if item is None:
                    return
                if isinstance(item, tuple) and item[0] is CLOSE:
                    context.abort(item[1], item[2])
                yield item
        finally:
            with lock:
                self.streams.pop(stream.number, None)
            emit(event="stream_closed", stream=stream.number)

    def StreamAggregatedResources(self, request_iterator, context):
        return self.serve(request_iterator, context, delta=False)

    def DeltaAggregatedResources(self, request_iterator, context):
        return self.serve(request_iterator, context, delta=True)

    # Commands.

    def command(self, command):
        kind = command.get("cmd")
        with lock:
            if kind == "set":
                type_url = command["type_url"]
                snapshot = self.snapshots.setdefault(type_url, Snapshot())
                version = command.get("version", "")
                resources = {}
                for item in command.get("resources", []):
                    name, resource = parse_resource(item)
                    old = snapshot.resources.get(name)
                    same = old is not None and (old[1] is resource or old[1].SerializeToString() == resource.SerializeToString())
                    resources[name] = (old[0] if same else version, resource)
                snapshot.version = version
                snapshot.resources = resources
                if command.get("push", True):
                    self.push_all(type_url)
            elif kind == "push":
                for type_url in command.get("type_urls", []):
                    self.push_all(type_url)
            elif kind == "remove":
                type_url = command["type_url"]
                snapshot = self.snapshots.setdefault(type_url, Snapshot())
                snapshot.version = command.get("version", snapshot.version)
                for name in command.get("names", []):
                    snapshot.resources.pop(name, None)
                self.push_all(type_url)
            elif kind == "raw":
                delta = bool(command.get("delta", False))
                for stream in list(self.streams.values()):
                    if stream.delta != delta:
                        continue
                    kind_class = discovery_pb2.DeltaDiscoveryResponse if delta else discovery_pb2.DiscoveryResponse
                    response = json_format.ParseDict(command["response"], kind_class())
                    names = [r.name for r in response.resources] if delta else []
                    self.send(stream, response, names, list(getattr(response, "removed_resources", [])))
            elif kind == "close_streams":
                code = next((c for c in grpc.StatusCode if c.value[0] == command.get("code", 14)),
                            grpc.StatusCode.UNAVAILABLE)
                for stream in list(self.streams.values()):
                    stream.outbound.put((CLOSE, code, command.get("message", "closed by the test control plane")))
            else:
                raise ValueError("unknown command %r" % kind)


def main():
    global TIMING
    arguments = sys.argv[1:]
    if "--timing" in arguments:
        TIMING = True
        arguments.remove("--timing")
    if len(arguments) != 1:
        sys.exit("usage: xds_control_plane.py SOCKET_PATH [--timing]")
    path = arguments[0]
    plane = ControlPlane()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(plane, server)
    if path == "tcp":
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        emit(event="ready", port=port)
    else:
        if os.path.exists(path):
            os.unlink(path)
        server.add_insecure_port("unix:" + path)
        server.start()
        emit(event="ready")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        command = {}
        try:
            command = json.loads(line)
            plane.command(command)
        except Exception as error:  # reported, and the server carries on
            emit(event="error", message="%s: %s" % (type(error).__name__, error), id=command.get("id"))
        if "id" in command:
            emit(event="done", id=command["id"])
    with lock:
        for stream in list(plane.streams.values()):
            stream.outbound.put(None)
    server.stop(grace=0.5).wait()


if __name__ == "__main__":
    main()
