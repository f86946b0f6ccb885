#!/usr/bin/python3
"""A stand-in for Envoy/pilotfish-proxy, supervised by `pilotfish proxy sidecar` in the agent tests.

Parses pilot-agent's command line, serves an admin API on the bootstrap's admin port (read from the -c file)
and records what happens, one line per event, to $FAKE_PROXY_RECORD:
  start pid=<pid> uid=<uid> gid=<gid> args=<json argv>
  admin <METHOD> <path?query>
  sigterm
Environment knobs:
  FAKE_PROXY_READY_AFTER   seconds before /stats reports LIVE and CDS/LDS accepted (default 0.3)
  FAKE_PROXY_READY_FILE    instead: ready once this file exists
  FAKE_PROXY_CRASH_AFTER   exit 3 after this many seconds (default: never)
  FAKE_PROXY_CRASH_ONCE    a marker file path: crash only on the start that creates it
  FAKE_PROXY_ACTIVE_CONNECTIONS  active inbound connections once draining starts; each poll removes one
  FAKE_PROXY_IGNORE_SIGTERM  "1": keep running on SIGTERM (the agent must SIGKILL)
"""
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD = os.environ.get("FAKE_PROXY_RECORD", "/dev/null")
lock = threading.Lock()


def record(line):
    with lock:
        with open(RECORD, "a") as f:
            f.write(line + "\n")


def arg(name):
    argv = sys.argv[1:]
    if name in argv:
        i = argv.index(name)
        return argv[i + 1] if i + 1 < len(argv) else None
    return None


config_path = arg("-c")
if config_path is None:
    sys.stderr.write("fake proxy: -c is required\n")
    sys.exit(2)
with open(config_path) as f:
    bootstrap = json.load(f)
admin_port = bootstrap["admin"]["address"]["socketAddress"]["portValue"]
started = time.monotonic()
ready_after = float(os.environ.get("FAKE_PROXY_READY_AFTER", "0.3"))
state = {"active": int(os.environ.get("FAKE_PROXY_ACTIVE_CONNECTIONS", "0")), "draining": False}
record("start pid=%d uid=%d gid=%d args=%s" % (os.getpid(), os.getuid(), os.getgid(), json.dumps(sys.argv[1:])))
print("fake proxy started on admin port %d" % admin_port, flush=True)
sys.stderr.write("fake proxy stderr line\n")
sys.stderr.flush()


ready_file = os.environ.get("FAKE_PROXY_READY_FILE")


def ready():
    if ready_file:
        return os.path.exists(ready_file)
    return time.monotonic() - started >= ready_after


class Admin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain; charset=UTF-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        record("admin GET " + self.path)
        path, _, query = self.path.partition("?")
        if path == "/ready":
            self.reply(200 if ready() else 503, "LIVE\n" if ready() else "INITIALIZING\n")
        elif path == "/stats":
            self.reply(200, self.stats(query))
        elif path == "/stats/prometheus":
            self.reply(200, PROMETHEUS)
        else:
            self.reply(404, "not found\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or "0")
        if length:
            self.rfile.read(length)
        record("admin POST " + self.path)
        path = self.path.partition("?")[0]
        if path == "/drain_listeners":
            state["draining"] = True
            self.reply(200, "OK\n")
        elif path == "/quitquitquit":
            self.reply(200, "OK\n")
            threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0))).start()
        else:
            self.reply(404, "not found\n")

    def stats(self, query):
        if "downstream_cx_active" in query:
            lines = []
            if state["draining"] and state["active"] > 0:
                state["active"] -= 1
            lines.append("listener.0.0.0.0_15006.downstream_cx_active: %d" % state["active"])
            lines.append("listener.0.0.0.0_15006.worker_0.downstream_cx_active: %d" % state["active"])
            lines.append("listener.0.0.0.0_15090.downstream_cx_active: 7")
            lines.append("listener.admin.downstream_cx_active: 1")
            return "\n".join(lines) + "\n"
        ok = ready()
        if "cluster_manager" in query:
            n = 1 if ok else 0
            return ("cluster_manager.cds.update_rejected: 0\ncluster_manager.cds.update_success: %d\n"
                    "listener_manager.lds.update_rejected: 0\nlistener_manager.lds.update_success: %d\n" % (n, n))
        if "server" in query:
            return "listener_manager.workers_started: %d\nserver.state: %d\n" % (1 if ok else 0, 0 if ok else 3)
        return ""


PROMETHEUS = """# TYPE envoy_cluster_manager_cds_update_success counter
envoy_cluster_manager_cds_update_success{} 1
# TYPE envoy_server_live gauge
envoy_server_live{} 1
# TYPE envoy_listener_downstream_cx_active gauge
envoy_listener_downstream_cx_active{listener_address="0.0.0.0_15006"} 0
"""


def on_sigterm(signum, frame):
    record("sigterm")
    if os.environ.get("FAKE_PROXY_IGNORE_SIGTERM") == "1":
        return
    os._exit(0)


signal.signal(signal.SIGTERM, on_sigterm)
crash_after = os.environ.get("FAKE_PROXY_CRASH_AFTER")
crash_once = os.environ.get("FAKE_PROXY_CRASH_ONCE")  # a marker file: crash only while it does not exist
if crash_once and os.path.exists(crash_once):
    crash_after = None
elif crash_once:
    open(crash_once, "w").close()
if crash_after:
    def crash():
        time.sleep(float(crash_after))
        record("crash")
        os._exit(3)
    threading.Thread(target=crash, daemon=True).start()

server = ThreadingHTTPServer(("127.0.0.1", admin_port), Admin)
server.daemon_threads = True
server.allow_reuse_address = True
server.serve_forever()
