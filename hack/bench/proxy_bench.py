#!/usr/bin/env python3
"""pilotfish-proxy vs HAProxy vs direct, one worker each, on loopback. Called by hack/bench-proxy.sh.

Every variant puts the same nginx (one worker, 1 KiB response) behind the proxy and drives it with wrk.
Variants alternate within each run; the table shows medians over --runs, then the per-run pilotfish/HAProxy
CPU ratios (median and range), which cancel the machine's drift between runs. CPU per request is the proxy
process's own user+system time divided by the requests it carried, which is the fair comparison on a
2-core box where wrk and nginx compete for the same CPUs (see ../shared/docs/proxy-performance.md); system
calls per request are counted the same way with `perf stat` (shown as – without perf).
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
# Connections HAProxy may hold (two descriptors each), from the descriptor limit main() could get.
IDLE_MAX = 8000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid, field="VmRSS"):
    """VmRSS (all resident pages, shared library text included) or RssAnon (the process's own heap)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def hey_fixed_rate(url, seconds, rate, connections=10):
    """Latency at a fixed request rate well below saturation (hey's -q is per connection): where a proxy's
    queueing shows, which a saturating wrk run hides behind throughput. Returns p50/p99 in ms or None."""
    if not shutil.which("hey"):
        return None
    per_connection = max(1, rate // connections)
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(connections), "-q", str(per_connection), url],
                         capture_output=True, text=True, check=True).stdout

    def percentile(p):
        m = re.search(rf"{p}% in ([\d.]+) secs", out)
        return float(m.group(1)) * 1000 if m else float("nan")

    statuses = re.findall(r"\[(\d+)\]\s+(\d+) responses", out)
    failed = sum(int(n) for code, n in statuses if code != "200")
    return {"p50": percentile(50), "p99": percentile(99), "failed": failed,
            "rate": per_connection * connections}


def wrk(url, seconds, connections, close=False):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)

    def latency(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    return {
        "rps": rps, "requests": total, "p50": latency(50), "p99": latency(99),
        "errors": int(errors.group(1)) if errors else 0, "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


class SyscallCount:
    """System calls a process makes while it runs, counted by `perf stat` on the raw_syscalls tracepoint
    (every thread of the process). Without perf or tracepoint access, `stop()` returns None."""

    def __init__(self, pid):
        self.proc = None
        if pid and shutil.which("perf"):
            self.proc = subprocess.Popen(
                ["perf", "stat", "-e", "raw_syscalls:sys_enter", "-x,", "-p", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.2)  # let perf attach before the load starts

    def stop(self):
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        for line in err.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter" and fields[0].isdigit():
                return int(fields[0])
        return None


def malloc_probe():
    """A perf uprobe on libc's malloc (created once; needs root or perf_event_paranoid ≤ 1). None when perf
    cannot place it. The Swift runtime is linked statically, but malloc stays in the shared libc."""
    if not shutil.which("perf"):
        return None
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    if "probe_libc:malloc" not in listed:
        libc = next((p for p in ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6",
                                 "/usr/lib/x86_64-linux-gnu/libc.so.6"] if os.path.exists(p)), None)
        if not libc or subprocess.run(["perf", "probe", "-x", libc, "malloc"], capture_output=True).returncode != 0:
            return None
    return "probe_libc:malloc"


def count_event(pid, event, seconds, url, connections, close):
    """Runs wrk for `seconds` while perf counts `event` in `pid`; returns (count, requests)."""
    proc = subprocess.Popen(["perf", "stat", "-e", event, "-x,", "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.2)
    r = wrk(url, seconds, connections, close)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] == event and fields[0].isdigit():
            return int(fields[0]), r["requests"]
    return None, r["requests"]


class Nginx:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = workdir
        body = "x" * 1024
        with open(os.path.join(workdir, "big.bin"), "wb") as f:
            f.write(os.urandom(1 << 20) * 256)  # 256 MiB
        # nginx's workers run as an unprivileged user: they must be able to read the file.
        os.chmod(workdir, 0o755)
        os.chmod(os.path.join(workdir, "big.bin"), 0o644)
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 25000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    location = / {{ default_type text/plain; return 200 "{body}"; }}
    location = /big.bin {{ root {workdir}; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", workdir], stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            sys.exit("bench: nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class HAProxy:
    name = "haproxy"

    def __init__(self, workdir, upstream):
        self.tcp_port, self.http_port = free_port(), free_port()
        conf = os.path.join(workdir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(f"""
global
  nbthread 1
  maxconn {IDLE_MAX}
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend tcp_in
  mode tcp
  bind 127.0.0.1:{self.tcp_port}
  default_backend tcp_nginx
backend tcp_nginx
  mode tcp
  server n 127.0.0.1:{upstream}
frontend http_in
  mode http
  option http-keep-alive
  bind 127.0.0.1:{self.http_port}
  default_backend http_nginx
backend http_nginx
  mode http
  http-reuse always
  server n 127.0.0.1:{upstream}
""")
        start = time.monotonic()
        self.proc = subprocess.Popen(["haproxy", "-f", conf, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.tcp_port) or not wait_port(self.http_port):
            sys.exit("bench: haproxy did not start")
        self.ready_seconds = time.monotonic() - start
        self.pid = self.proc.pid

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Pilotfish:
    name = "pilotfish"

    def __init__(self, workdir, upstream, binary):
        self.tcp_port, self.http_port, self.admin = free_port(), free_port(), free_port()
        tcp = """
  - name: tcp_in
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_in
          cluster: nginx""" % self.tcp_port
        http = """
  - name: http_in
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http_in
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: nginx, timeout: 0s}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}""" % self.http_port
        cluster = """
  clusters:
  - name: nginx
    connect_timeout: 1s
    load_assignment:
      cluster_name: nginx
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]
""" % upstream
        admin = "admin:\n  address: {socket_address: {address: 127.0.0.1, port_value: %d}}\n" % self.admin
        conf = os.path.join(workdir, "pilotfish.yaml")
        with open(conf, "w") as f:
            f.write(admin + "static_resources:\n  listeners:" + tcp + http + cluster)
        if subprocess.run([binary, "-c", conf, "--mode", "validate"], capture_output=True).returncode != 0:
            # No HTTP connection manager in this build: benchmark L4 only.
            with open(conf, "w") as f:
                f.write(admin + "static_resources:\n  listeners:" + tcp + cluster)
            self.http_port = None
        start = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "-c", conf, "--concurrency", "1", "-l", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = start + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=0.5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.005)
        else:
            sys.exit("bench: pilotfish-proxy did not become ready")
        self.ready_seconds = time.monotonic() - start
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def idle_connections_rss(proxy, port, count=1000):
    """RSS growth (KiB) for `count` idle client connections through the proxy's L4 listener."""
    before = rss_kib(proxy.pid)
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        sockets.append(s)
    time.sleep(1.0)
    after = rss_kib(proxy.pid)
    for s in sockets:
        s.close()
    time.sleep(0.5)
    return after - before


def throughput_mib_s(port):
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}",
         f"http://127.0.0.1:{port}/big.bin"], capture_output=True, text=True, check=True).stdout
    code, size, speed = out.split()
    if code != "200" or int(size) != 256 << 20:
        sys.exit(f"bench: bulk download through port {port} failed: HTTP {code}, {size} bytes")
    return float(speed) / (1 << 20)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=2000,
                        help="requests/s for the fixed-rate latency pass (hey -q), well below saturation")
    parser.add_argument("--chart", help="write a PNG chart of the per-run ratios against HAProxy here")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # 10,000 proxied connections need ~20,000 descriptors in each proxy; root may raise the hard limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    global IDLE_MAX
    IDLE_MAX = (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200) // 2

    workdir = tempfile.mkdtemp(prefix="pf-bench-")
    started = []
    try:
        nginx = Nginx(workdir)
        started.append(nginx)
        haproxy = HAProxy(workdir, nginx.port)
        started.append(haproxy)
        pilotfish = Pilotfish(workdir, nginx.port, args.proxy)
        started.append(pilotfish)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    try:
        # Idle connections first: after the load runs the allocator holds freed pages, and RSS would not
        # grow for them (the figure read 0.0 MiB).
        pf_conn = idle_connections_rss(pilotfish, pilotfish.tcp_port)
        ha_conn = idle_connections_rss(haproxy, haproxy.tcp_port)
        results = {}

        def record(key, value):
            results.setdefault(key, []).append(value)

        variants = [("direct", None, nginx.port, False), ("haproxy tcp", haproxy, haproxy.tcp_port, False),
                    ("pilotfish tcp_proxy", pilotfish, pilotfish.tcp_port, False),
                    ("haproxy http", haproxy, haproxy.http_port, False)]
        if pilotfish.http_port:
            variants.append(("pilotfish http", pilotfish, pilotfish.http_port, False))
        variants += [("direct, new connection per request", None, nginx.port, True),
                     ("haproxy tcp, new connection per request", haproxy, haproxy.tcp_port, True),
                     ("pilotfish tcp_proxy, new connection per request", pilotfish, pilotfish.tcp_port, True)]
        for run in range(args.runs):
            for name, proxy, port, close in variants:
                wrk(f"http://127.0.0.1:{port}/", 1, args.connections, close)  # warm-up
                syscalls = SyscallCount(proxy.pid if proxy else None)
                cpu0 = cpu_seconds(proxy.pid) if proxy else 0
                r = wrk(f"http://127.0.0.1:{port}/", args.duration, args.connections, close)
                cpu = cpu_seconds(proxy.pid) - cpu0 if proxy else float("nan")
                calls = syscalls.stop()
                r["us_per_req"] = cpu / r["requests"] * 1e6 if proxy else float("nan")
                r["syscalls_per_req"] = calls / r["requests"] if calls is not None else float("nan")
                record(name, r)
                print(f"run {run + 1}: {name}: {r['rps']:.0f} rps, p99 {r['p99']:.2f} ms, "
                      f"{r['us_per_req']:.1f} µs CPU/req, {r['syscalls_per_req']:.1f} syscalls/req, "
                      f"errors {r['errors']} {r['socket_errors']}", file=sys.stderr)
            for name, port in [("direct", nginx.port), ("haproxy tcp", haproxy.tcp_port),
                               ("pilotfish tcp_proxy", pilotfish.tcp_port)]:
                record("throughput " + name, throughput_mib_s(port))

        def median(key, field):
            return statistics.median(r[field] for r in results[key])

        print()
        print(f"wrk -t1 -c{args.connections} -d{args.duration}s, 1 KiB responses from nginx, medians of {args.runs} runs")
        print(f"{'variant':48} {'rps':>9} {'×HAProxy':>9} {'p50 ms':>7} {'p99 ms':>7} {'µs CPU/req':>11} "
              f"{'×HAProxy CPU':>13} {'syscalls/req':>13}")
        def peer_of(name):
            if name.startswith("pilotfish tcp_proxy"):
                return name.replace("pilotfish tcp_proxy", "haproxy tcp")
            if name.startswith("pilotfish http"):
                return "haproxy http"
            return None

        for name, proxy, _, close in variants:
            peer = peer_of(name)
            rps = median(name, "rps")
            cpu = median(name, "us_per_req")
            ratio = f"{rps / median(peer, 'rps'):.2f}" if peer else "–"
            cpu_ratio = f"{cpu / median(peer, 'us_per_req'):.2f}" if peer else "–"
            calls = median(name, "syscalls_per_req")
            calls_text = "–" if calls != calls else f"{calls:.1f}"  # NaN: no proxy, or perf unavailable
            print(f"{name:48} {rps:9.0f} {ratio:>9} {median(name, 'p50'):7.2f} {median(name, 'p99'):7.2f} "
                  f"{cpu:11.1f} {cpu_ratio:>13} {calls_text:>13}")
        # Each run measures pilotfish right after HAProxy, so a per-run ratio cancels the machine's slow drift
        # between runs; its median and range show how far one run can be trusted.
        print()
        print("×HAProxy CPU per run (pilotfish / HAProxy in the same run): median [min–max]")
        for name, _, _, _ in variants:
            peer = peer_of(name)
            if not peer:
                continue
            ratios = [a["us_per_req"] / b["us_per_req"] for a, b in zip(results[name], results[peer])
                      if b["us_per_req"] > 0]
            if ratios:
                print(f"  {name:48} {statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}]")
        # p99 at a fixed rate: each kept-alive variant, alternating within each run.
        fixed = [(name, port) for name, proxy, port, close in variants if proxy and not close]
        latency = {}
        if shutil.which("hey"):
            for run in range(args.runs):
                for name, port in fixed:
                    r = hey_fixed_rate(f"http://127.0.0.1:{port}/", args.duration, args.rate)
                    latency.setdefault(name, []).append(r)
            print()
            print(f"latency at a fixed {fixed and latency[fixed[0][0]][0]['rate']} requests/s "
                  f"(hey -c 10 -q, {args.duration} s, medians of {args.runs} runs)")
            for name, _ in fixed:
                rs = latency[name]
                p50 = statistics.median(r["p50"] for r in rs)
                p99 = statistics.median(r["p99"] for r in rs)
                peer = peer_of(name)
                ratio = ""
                if peer in latency:
                    ratios = [a["p99"] / b["p99"] for a, b in zip(rs, latency[peer]) if b["p99"] > 0]
                    ratio = f"  p99 ×HAProxy {statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}]"
                failed = sum(r["failed"] for r in rs)
                print(f"  {name:48} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms{ratio}"
                      + (f"  ({failed} non-200)" if failed else ""))
        else:
            print("latency at a fixed rate: skipped (hey not installed)")
        if args.chart:
            chart(args.chart, variants, results, latency, peer_of)
        print()
        t_direct = statistics.median(results["throughput direct"])
        t_ha = statistics.median(results["throughput haproxy tcp"])
        t_pf = statistics.median(results["throughput pilotfish tcp_proxy"])
        print(f"bulk TCP (256 MiB via curl): direct {t_direct:.0f} MiB/s, haproxy {t_ha:.0f} MiB/s, "
              f"pilotfish {t_pf:.0f} MiB/s (×HAProxy {t_pf / t_ha:.2f})")
        # Mallocs per request in a separate pass: a uprobe traps on every malloc, which would distort the
        # CPU figures above.
        probe = malloc_probe()
        if probe:
            print("mallocs per request (perf uprobe on libc malloc, 3 s of wrk each):")
            for name, proxy, port, close in variants:
                if not proxy:
                    continue
                calls, requests = count_event(proxy.pid, probe, 3, f"http://127.0.0.1:{port}/", args.connections, close)
                text = "–" if calls is None or requests == 0 else f"{calls / requests:.2f}"
                print(f"  {name:48} {text}")
            print()
        pf_idle, ha_idle = rss_kib(pilotfish.pid), rss_kib(haproxy.pid)
        print(f"RSS idle: pilotfish {pf_idle / 1024:.1f} MiB, haproxy {ha_idle / 1024:.1f} MiB "
              f"(anonymous: pilotfish {rss_kib(pilotfish.pid, 'RssAnon') / 1024:.1f} MiB, "
              f"haproxy {rss_kib(haproxy.pid, 'RssAnon') / 1024:.1f} MiB)")
        print(f"RSS per 1,000 idle proxied connections: pilotfish {pf_conn / 1024:.1f} MiB, haproxy {ha_conn / 1024:.1f} MiB")
        if IDLE_MAX >= 10_000:
            pf_10k = idle_connections_rss(pilotfish, pilotfish.tcp_port, count=10_000)
            ha_10k = idle_connections_rss(haproxy, haproxy.tcp_port, count=10_000)
            print(f"RSS for 10,000 idle proxied connections: pilotfish {pf_10k / 1024:.1f} MiB, "
                  f"haproxy {ha_10k / 1024:.1f} MiB")
        else:
            print(f"RSS for 10,000 idle proxied connections: skipped (open-files limit allows {IDLE_MAX})")
        print(f"start to ready: pilotfish {pilotfish.ready_seconds * 1000:.0f} ms (/ready 200), "
              f"haproxy {haproxy.ready_seconds * 1000:.0f} ms (port accepting)")
    finally:
        pilotfish.stop()
        haproxy.stop()
        nginx.stop()


def chart(path, variants, results, latency, peer_of):
    """Per-run pilotfish/HAProxy ratios (CPU per request, system calls per request, p99 at a fixed rate) as
    bars at the median with min–max whiskers; 1.0 is parity, lower is better."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for name, proxy, _, close in variants:
        peer = peer_of(name)
        if not peer:
            continue
        label = name.replace("pilotfish ", "").replace(", new connection per request", "\nnew conn/req")
        for metric, field, source in [("CPU/req", "us_per_req", results), ("syscalls/req", "syscalls_per_req", results),
                                      ("p99 @ fixed rate", "p99", latency)]:
            if name not in source or peer not in source:
                continue
            ratios = [a[field] / b[field] for a, b in zip(source[name], source[peer])
                      if b[field] and b[field] == b[field] and a[field] == a[field]]
            if ratios:
                rows.append((label, metric, statistics.median(ratios), min(ratios), max(ratios)))
    labels = list(dict.fromkeys(r[0] for r in rows))
    metrics = ["CPU/req", "syscalls/req", "p99 @ fixed rate"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.25
    for i, metric in enumerate(metrics):
        xs, ys, lo, hi = [], [], [], []
        for j, label in enumerate(labels):
            match = [r for r in rows if r[0] == label and r[1] == metric]
            if match:
                _, _, med, mn, mx = match[0]
                xs.append(j + (i - 1) * width)
                ys.append(med)
                lo.append(med - mn)
                hi.append(mx - med)
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=metric)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("pilotfish / HAProxy (lower is better)")
    ax.set_title("pilotfish-proxy against HAProxy, per-run ratios (median, min–max)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
