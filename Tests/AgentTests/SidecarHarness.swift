import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Agent

#if canImport(Glibc)
  import Glibc
#endif

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(
  timeout: Duration = .seconds(15), _ condition: () async throws -> Bool
) async rethrows -> Bool {
  let deadline = ContinuousClock.now + timeout
  while ContinuousClock.now < deadline {
    if try await condition() { return true }
    try? await Task.sleep(for: .milliseconds(20))
  }
  return try await condition()
}

/// Waits (bounded) for `process` to exit and returns its status (128+signal when killed); nil when it was
/// still running at the deadline (it is SIGKILLed then). `ChildProcess.reap` also reaps with `waitpid`
/// itself: under the test runner's blocked signal mask Foundation may never notice the exit.
func reap(_ process: Process, timeout: Duration = .seconds(20)) -> Int32? {
  switch ChildProcess.reap(process, timeout: timeout) {
  case .exited(let code): code
  case .signaled(let signal): 128 + signal
  case .timedOut: nil
  }
}

/// SIGKILL and reap (processes started from the test runner inherit its blocked mask, SIGTERM included).
func killAndReap(_ process: Process) {
  guard process.processIdentifier > 0 else { return }
  kill(process.processIdentifier, SIGKILL)
  _ = reap(process, timeout: .seconds(5))
}

/// Ports `freePort` has handed out in this test process.
private let handedOutPorts = Mutex<Set<Int>>([])

/// A TCP port on 127.0.0.1 that nothing listens on now and that this process has not handed out before.
/// It is drawn below the kernel's ephemeral range (32768 and up by default): asking the kernel for port 0
/// could return the same port to two parallel tests, or to an outgoing connection, between the release
/// here and the bind in the process under test — the cause of "port collision" and wrong probe results
/// in CI.
func freePort() -> Int {
  while true {
    let candidate = Int.random(in: 20_000..<32_768)
    guard handedOutPorts.withLock({ $0.insert(candidate).inserted }), canBind(candidate) else { continue }
    return candidate
  }
}

/// Whether 127.0.0.1:`port` can be bound right now (the socket is closed again at once).
private func canBind(_ port: Int) -> Bool {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { return false }
  defer { close(fd) }
  return onLoopback(fd, port: port) { bind($0, $1, $2) } == 0
}

/// Calls `bind` or `connect` on `fd` with the address 127.0.0.1:`port`.
func onLoopback(
  _ fd: Int32, port: Int, _ call: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
) -> Int32 {
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = in_port_t(UInt16(port).bigEndian)
  return withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      call(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
    }
  }
}

enum Binaries {
  /// The built `pilotfish`, found like ProxyServerTests finds `pilotfish-proxy`.
  static func pilotfish() throws -> String {
    try builtProduct("pilotfish", packageRoot: packageRoot.path)
  }

  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()

  static func helper(_ name: String) -> String {
    packageRoot.appendingPathComponent("Tests/AgentTests/Helpers/\(name)").path
  }

  /// Runs a program to completion (at most 60 s) with `stdin`, returning its status (128+signal when
  /// killed, -1 on timeout) and its standard output followed by its standard error.
  static func run(
    _ path: String, _ arguments: [String], stdin: String = "", environment: [String: String]? = nil,
    directory: String? = nil
  ) throws -> (status: Int32, output: String) {
    let child = try ChildProcess.run(
      path, arguments, input: Data(stdin.utf8), environment: environment, currentDirectory: directory,
      timeout: .seconds(60))
    return (child.termination.exitStatusOrFailure, child.stdoutText + child.stderrText)
  }
}

/// `pilotfish proxy sidecar` running in a temporary pod root with the fake proxy (Helpers/fake_proxy.py),
/// on free ports. Records what the fake proxy saw in `record.log`.
final class SidecarUnderTest: @unchecked Sendable {
  let root: TempRoot
  let statusPort = freePort()
  let metricsPort = freePort()
  let adminPort = freePort()
  let envoyStatusPort = freePort()
  let process = Process()
  let client = LocalHTTPClient()
  var recordPath: String { root.path + "/record.log" }
  var stdoutPath: String { root.path + "/agent.out" }
  var stderrPath: String { root.path + "/agent.err" }

  /// `proxyConfig` is merged into the PROXY_CONFIG the harness sets (admin port, no control plane, 1s drain).
  init(
    environment extra: [String: String] = [:], arguments: [String] = [], proxyConfig: String? = nil,
    start: Bool = true
  ) throws {
    root = try TempRoot()
    chmod(root.path, 0o777)
    let script = root.path + "/fake_proxy.py"
    try FileManager.default.copyItem(atPath: Binaries.helper("fake_proxy.py"), toPath: script)
    chmod(script, 0o755)
    FileManager.default.createFile(atPath: recordPath, contents: nil)
    chmod(recordPath, 0o666)
    var environment = ProcessInfo.processInfo.environment
    environment["POD_NAME"] = "web-0"
    environment["POD_NAMESPACE"] = "shop"
    environment["INSTANCE_IP"] = "127.0.0.1"
    environment["ENVOY_STATUS_PORT"] = String(envoyStatusPort)
    environment["PROXY_CONFIG"] =
      proxyConfig
      ?? #"{"proxyAdminPort": \#(adminPort), "discoveryAddress": "", "terminationDrainDuration": "1s"}"#
    environment["FAKE_PROXY_RECORD"] = recordPath
    environment["PILOTFISH_LOCAL_CA_DIR"] = root.path + "/local-ca"
    for (k, v) in extra { environment[k] = v }
    process.executableURL = URL(fileURLWithPath: try Binaries.pilotfish())
    process.arguments =
      [
        "proxy", "sidecar", "--domain", "shop.svc.cluster.local", "--proxyLogLevel=warning",
        "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info",
        "--binary-path", script, "--status-port", String(statusPort), "--metrics-port", String(metricsPort),
        "--listen-address", "127.0.0.1", "--restart-backoff-ms", "50", "--stop-grace-ms", "2000",
      ] + arguments
    process.environment = environment
    process.currentDirectoryURL = URL(fileURLWithPath: root.path)
    FileManager.default.createFile(atPath: stdoutPath, contents: nil)
    FileManager.default.createFile(atPath: stderrPath, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
    process.standardError = FileHandle(forWritingAtPath: stderrPath)
    process.standardInput = FileHandle.nullDevice
    if start { try process.run() }
  }

  var record: [String] {
    ((try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
  }
  var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
  var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

  func get(_ path: String, port: Int? = nil, method: String = "GET", headers: [(String, String)] = [])
    async throws -> LocalHTTPResponse
  {
    try await client.request(
      method, host: "127.0.0.1", port: port ?? statusPort, path: path, headers: headers, timeout: .seconds(10)
    )
  }

  func status(_ path: String, port: Int? = nil) async -> Int? {
    try? await get(path, port: port).status
  }

  func waitUntilReady() async -> Bool {
    await eventually { await status("/healthz/ready") == 200 }
  }

  func signal(_ number: Int32) { kill(process.processIdentifier, number) }

  /// Waits (bounded) for the agent to exit; nil if it did not.
  func waitForExit(timeout: Duration = .seconds(20)) async -> Int32? {
    if let status = exitStatus { return status }
    exitStatus = reap(process, timeout: timeout)
    return exitStatus
  }
  private var exitStatus: Int32?

  /// Kills whatever is left: the agent and every fake proxy it started.
  func cleanUp() {
    if exitStatus == nil && process.processIdentifier > 0 { killAndReap(process) }
    for line in record where line.hasPrefix("start pid=") {
      if let pid = Int32(line.dropFirst("start pid=".count).prefix { $0.isNumber }) { kill(pid, SIGKILL) }
    }
    root.remove()
  }
}
