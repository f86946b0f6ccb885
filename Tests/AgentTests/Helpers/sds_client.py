#!/usr/bin/env python3
"""A third-party SDS client for the agent's tests: grpcio + the official Envoy protos (PyPI xds-protos).

StreamSecrets mode opens one stream on the Unix socket, asks for --names, writes every response to
<out>/response-<n>.json and ACKs it like Envoy (same names, the response's version and nonce), until
--responses responses arrived. Fetch mode makes one FetchSecrets call. Exit 0 on success, 2 on timeout,
3 on a gRPC error (its status code and details printed).
"""
import argparse
import json
import os
import queue
import sys

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

TYPE_URL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def describe(response):
    resources = []
    for any_message in response.resources:
        if any_message.type_url != TYPE_URL:
            raise SystemExit(f"unexpected resource type {any_message.type_url}")
        secret = secret_pb2.Secret()
        any_message.Unpack(secret)
        entry = {"name": secret.name, "kind": secret.WhichOneof("type")}
        if entry["kind"] == "tls_certificate":
            entry["chain"] = secret.tls_certificate.certificate_chain.inline_bytes.decode()
            entry["key"] = secret.tls_certificate.private_key.inline_bytes.decode()
        elif entry["kind"] == "validation_context":
            entry["root"] = secret.validation_context.trusted_ca.inline_bytes.decode()
        resources.append(entry)
    return {"version": response.version_info, "nonce": response.nonce, "type_url": response.type_url,
            "resources": resources}


def write(out, index, document):
    path = os.path.join(out, f"response-{index}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(document, f)
    os.rename(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--names", required=True, help="comma-separated resource names")
    parser.add_argument("--responses", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--fetch", action="store_true")
    args = parser.parse_args()
    names = [n for n in args.names.split(",") if n]
    node = base_pb2.Node(id="sidecar~10.0.0.1~test.default~default.svc.cluster.local", cluster="test.default")
    channel = grpc.insecure_channel("unix:" + os.path.abspath(args.socket))
    stub = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
    try:
        if args.fetch:
            response = stub.FetchSecrets(
                discovery_pb2.DiscoveryRequest(node=node, type_url=TYPE_URL, resource_names=names),
                timeout=args.timeout)
            write(args.out, 1, describe(response))
            return 0
        requests = queue.Queue()
        requests.put(discovery_pb2.DiscoveryRequest(node=node, type_url=TYPE_URL, resource_names=names))

        def outgoing():
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item

        stream = stub.StreamSecrets(outgoing(), timeout=args.timeout)
        count = 0
        for response in stream:
            count += 1
            write(args.out, count, describe(response))
            requests.put(discovery_pb2.DiscoveryRequest(
                node=node, type_url=TYPE_URL, resource_names=names, version_info=response.version_info,
                response_nonce=response.nonce))
            if count >= args.responses:
                requests.put(None)
                stream.cancel()
                return 0
        print(f"stream ended after {count} responses", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.CANCELLED:
            return 0
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            print("timed out waiting for responses", file=sys.stderr)
            return 2
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
