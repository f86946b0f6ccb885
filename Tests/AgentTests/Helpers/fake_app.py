#!/usr/bin/python3
"""The application container in the agent tests: HTTP on 127.0.0.1:<port> (argv[1], 0 = pick one; the bound
port is printed as the first stdout line). /healthz → 200, /unhealthy → 500, /redirect → 302, /metrics →
Prometheus text, /om → OpenMetrics. Each request's client address is appended to $FAKE_APP_RECORD. With
$FAKE_APP_TLS_CERT and $FAKE_APP_TLS_KEY (PEM files) it serves HTTPS instead."""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD = os.environ.get("FAKE_APP_RECORD", "/dev/null")

TEXT = """# HELP app_requests_total Requests served.
# TYPE app_requests_total counter
app_requests_total{code="200"} 42
# HELP envoy_server_live Deliberately the same family as the proxy's.
# TYPE envoy_server_live gauge
envoy_server_live 5
"""
OM = """# HELP app_jobs Jobs.
# TYPE app_jobs counter
app_jobs_total 3
# EOF
"""


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with open(RECORD, "a") as f:
            f.write("%s %s %s\n" % (self.client_address[0], self.path, self.headers.get("Accept", "")))
        routes = {
            "/healthz": (200, "text/plain", "ok\n"),
            "/unhealthy": (500, "text/plain", "broken\n"),
            "/redirect": (302, "text/plain", ""),
            "/metrics": (200, "text/plain; version=0.0.4; charset=utf-8", TEXT),
            "/om": (200, "application/openmetrics-text; version=1.0.0; charset=utf-8", OM),
        }
        status, ctype, body = routes.get(self.path, (404, "text/plain", "not found\n"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if status == 302:
            self.send_header("Location", "/healthz")
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), App)
server.daemon_threads = True
if os.environ.get("FAKE_APP_TLS_CERT"):
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["FAKE_APP_TLS_CERT"], os.environ["FAKE_APP_TLS_KEY"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
