#!/usr/bin/python3
"""A real gRPC health server for the agent's gRPC probe tests: grpcio + grpcio-health-checking (gRPC's own
grpc.health.v1 implementation) on 127.0.0.1:<argv[1]> (0 = pick one; the port is printed first). The
overall server status is SERVING; argv[2:] are `name=SERVING|NOT_SERVING` pairs for named services. Each
call's peer is appended to $FAKE_APP_RECORD."""
import os
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

RECORD = os.environ.get("FAKE_APP_RECORD", "/dev/null")


class Recording(grpc.ServerInterceptor):
    def intercept_service(self, continuation, details):
        with open(RECORD, "a") as f:
            f.write("%s\n" % details.method)
        return continuation(details)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[Recording()])
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    for pair in sys.argv[2:]:
        name, status = pair.split("=", 1)
        servicer.set(name, getattr(health_pb2.HealthCheckResponse, status))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:%d" % int(sys.argv[1]))
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
