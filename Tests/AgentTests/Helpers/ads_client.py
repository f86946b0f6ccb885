#!/usr/bin/env python3
"""A third-party ADS client standing in for Envoy in the xDS proxy tests: grpcio + the official Envoy
protos (PyPI xds-protos) over the agent's Unix socket. Opens one SotW (or --delta) stream for --type, writes
every response to <out>/response-<n>.json and ACKs it like Envoy (version + nonce), until --responses arrived
(exit 0). A stream ended by the server prints "<CODE>: <details>" and exits 3; a timeout exits 2."""
import argparse
import json
import os
import queue
import sys

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--type", required=True)
    parser.add_argument("--node", default="sidecar~10.0.0.1~app.shop~shop.svc.cluster.local")
    parser.add_argument("--delta", action="store_true")
    parser.add_argument("--responses", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--pad-bytes", type=int, default=0, help="a resource name this long in the first request")
    parser.add_argument("--flood", type=int, default=0, help="this many more requests right after the first")
    args = parser.parse_args()
    node = base_pb2.Node(id=args.node)
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(grpc.insecure_channel("unix:" + os.path.abspath(args.socket)))
    requests = queue.Queue()
    if args.delta:
        requests.put(discovery_pb2.DeltaDiscoveryRequest(node=node, type_url=args.type))
    else:
        names = ["x" * args.pad_bytes] if args.pad_bytes else []
        requests.put(discovery_pb2.DiscoveryRequest(node=node, type_url=args.type, resource_names=names))
    for i in range(args.flood):
        kind = discovery_pb2.DeltaDiscoveryRequest if args.delta else discovery_pb2.DiscoveryRequest
        requests.put(kind(type_url=args.type, response_nonce="flood-%d" % i))

    def outgoing():
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    call = (stub.DeltaAggregatedResources if args.delta else stub.StreamAggregatedResources)(
        outgoing(), timeout=args.timeout)
    count = 0
    try:
        for response in call:
            count += 1
            version = response.system_version_info if args.delta else response.version_info
            with open(os.path.join(args.out, "response-%d.json" % count), "w") as f:
                json.dump({"type_url": response.type_url, "version": version, "nonce": response.nonce}, f)
            if args.delta:
                requests.put(discovery_pb2.DeltaDiscoveryRequest(type_url=args.type, response_nonce=response.nonce))
            else:
                requests.put(discovery_pb2.DiscoveryRequest(
                    node=node, type_url=args.type, version_info=version, response_nonce=response.nonce))
            if count >= args.responses:
                # Give the ACK a moment to leave before the stream is cancelled.
                import time
                time.sleep(0.3)
                requests.put(None)
                call.cancel()
                return 0
        print("stream ended after %d responses" % count, file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.CANCELLED and count >= args.responses:
            return 0
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            print("timed out after %d responses" % count, file=sys.stderr)
            return 2
        print("%s: %s" % (error.code().name, error.details()), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
