internal import Foundation
internal import TestSupport
internal import Testing

/// The demo as a test: a pod namespace with `pilotfish istio-iptables` rules, `pilotfish proxy sidecar
/// --pod-metadata` (no istiod) supervising the real `pilotfish-proxy` as uid 1337, an application in the pod
/// and a server outside it. Traffic both ways is intercepted and delivered; health and merged metrics answer;
/// SIGTERM drains and exits cleanly.
@Suite("pilotfish proxy sidecar in a pod, no control plane", .serialized, .enabled(if: Privilege.shouldRun, "needs root (network namespaces)"))
struct SidecarAgentTests {
  @Test func agentAndProxyCarryTrafficWithoutIstiod() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let install = try net.interception([
      "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-b", "*", "-d",
      "15090,15021,15020",
    ])
    #expect(install.status == 0, "install failed: \(install.stderr)")
    try net.serve(in: net.pod, tcp: [8000])
    try net.serve(in: net.remote, tcp: [8080])

    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pf-agent-\(net.pod)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    chmod(directory.path, 0o755)
    let podFile = directory.appendingPathComponent("pod.json").path
    try """
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app-0", "namespace": "shop", "labels": {"app": "shop"}},
     "spec": {"serviceAccountName": "shop", "containers": [{"name": "app", "image": "app", "ports": [{"containerPort": 8000}]}]},
     "status": {"podIP": "\(net.podV4)"}}
    """.write(toFile: podFile, atomically: true, encoding: .utf8)

    let agent = Process()
    agent.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    agent.arguments = [
      "netns", "exec", net.pod, PodNetwork.pilotfish, "proxy", "sidecar", "--pod-metadata", podFile,
      "--concurrency", "1", "--local-ca-dir", directory.appendingPathComponent("local-ca").path,
    ]
    agent.currentDirectoryURL = directory
    var environment = ProcessInfo.processInfo.environment
    environment["PROXY_CONFIG"] = #"{"terminationDrainDuration": "1s"}"#
    agent.environment = environment
    let log = Pipe()
    agent.standardError = log
    agent.standardOutput = log
    try agent.run()
    defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }

    // Kubelet's view: the proxy's health listener on 15021 routes to the agent's readiness.
    let ready = poll(seconds: 30) {
      (try? net.exec(
        net.pod,
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:15021/healthz/ready"]))?
        .stdout == "200"
    }
    #expect(ready, "sidecar never became ready")
    let processes = try PodNetwork.run("/bin/ps", ["-o", "user=,args=", "-C", "pilotfish-proxy"]).stdout
    #expect(processes.contains("1337"), "the proxy should run as uid 1337: \(processes)")
    // The SDS socket belongs to the proxy's user, owner-only; the local CA holds the shared root.
    let socket = directory.appendingPathComponent("var/run/secrets/workload-spiffe-uds/socket").path
    let owner = try PodNetwork.run("/usr/bin/stat", ["-c", "%u %a", socket]).stdout
    #expect(owner.hasPrefix("1337 600"), "\(owner)")
    #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("local-ca/root-cert.pem").path))

    // Outbound from the app keeps its destination; inbound reaches the app from 127.0.0.6.
    let outbound = try net.connect(from: net.pod, to: net.remoteV4, port: 8080)
    #expect(outbound.hasPrefix("port=8080 orig=\(net.remoteV4):8080 peer=\(net.podV4):"), "\(outbound)")
    let inbound = try net.connect(from: net.remote, to: net.podV4, port: 8000)
    #expect(inbound.hasPrefix("port=8000 orig=\(net.podV4):8000 peer=127.0.0.6:"), "\(inbound)")
    let clusters = try net.exec(net.pod, ["curl", "-s", "http://127.0.0.1:15000/clusters"]).stdout
    #expect(clusters.contains("PassthroughCluster::\(net.remoteV4):8080::cx_total::1"))
    #expect(clusters.contains("InboundPassthroughCluster::\(net.podV4):8000::cx_total::1"))

    // Merged metrics: the agent's and the proxy's, from outside the pod as Prometheus scrapes them.
    let metrics = try net.exec(net.remote, ["curl", "-s", "http://\(net.podV4):15090/stats/prometheus"])
      .stdout
    #expect(metrics.contains("istio_agent_proxy_restarts_total 0"), "\(metrics.prefix(400))")
    #expect(metrics.contains("envoy_server_state{} 0"))

    // SIGTERM: drain, stop the proxy, exit 0.
    kill(agent.processIdentifier, SIGTERM)
    let termination = ChildProcess.reap(agent, timeout: .seconds(60))
    let output = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(termination == .exited(0), "\(termination): \(output)")
    #expect(output.contains("drain_listeners?inboundonly&graceful"), "\(output)")
    #expect(try net.interception(["--cleanup-only"]).status == 0)
  }

  private func poll(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if condition() { return true }
      usleep(100_000)
    }
    return condition()
  }
}
