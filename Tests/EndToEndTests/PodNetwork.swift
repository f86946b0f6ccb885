internal import Foundation
internal import TestSupport
internal import Testing

/// A "pod" network namespace joined to a "remote" one by two veth pairs, created by a test and removed by it.
///
/// Link A carries 10.78.<n>.0/24 and fd78:<n>::/64 (the pod's default route goes through it); link B carries
/// 10.80.<n>.0/24, for interface exclusion. The remote end also holds 10.78.<n>.65, inside an excluded range.
/// Every address is private to these namespaces.
final class PodNetwork {
  struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  let pod: String
  let remote: String
  let subnet: Int
  var podV4: String { "10.78.\(subnet).2" }
  var remoteV4: String { "10.78.\(subnet).1" }
  var remoteExcludedV4: String { "10.78.\(subnet).65" }
  var excludedRange: String { "10.78.\(subnet).64/26" }
  var podV6: String { "fd78:\(subnet)::2" }
  var remoteV6: String { "fd78:\(subnet)::1" }
  var podLinkB: String { "10.80.\(subnet).2" }
  var remoteLinkB: String { "10.80.\(subnet).1" }
  let podLinkBName: String
  private var servers: [Process] = []

  static var pilotfish: String {
    if let path = ProcessInfo.processInfo.environment["PILOTFISH_BIN"] { return path }
    let directory =
      Bundle.main.bundleURL.path.hasSuffix(".xctest")
      ? Bundle.main.bundleURL.deletingLastPathComponent() : Bundle.main.bundleURL
    return directory.appendingPathComponent("pilotfish").path
  }

  static let echo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Helpers/capture_echo.py").path
  /// The system interpreter: other uids cannot read a per-user installation under /root.
  static let python =
    FileManager.default.fileExists(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"

  init(ipv6: Bool = true) throws {
    subnet = Int.random(in: 1...250)
    let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    pod = "pf-pod-\(tag)"
    remote = "pf-rem-\(tag)"
    podLinkBName = "pfb\(tag.prefix(8))"
    let a = "pfa\(tag.prefix(8))"
    let script = """
      set -e
      ip netns add \(pod); ip netns add \(remote)
      ip link add \(a) type veth peer name \(a)r
      ip link add \(podLinkBName) type veth peer name \(podLinkBName)r
      ip link set \(a) netns \(pod); ip link set \(a)r netns \(remote)
      ip link set \(podLinkBName) netns \(pod); ip link set \(podLinkBName)r netns \(remote)
      ip -n \(pod) link set lo up; ip -n \(remote) link set lo up
      ip -n \(pod) addr add \(podV4)/24 dev \(a); ip -n \(remote) addr add \(remoteV4)/24 dev \(a)r
      ip -n \(remote) addr add \(remoteExcludedV4)/24 dev \(a)r
      ip -n \(pod) addr add \(podLinkB)/24 dev \(podLinkBName); ip -n \(remote) addr add \(remoteLinkB)/24 dev \(podLinkBName)r
      \(ipv6 ? "ip -n \(pod) -6 addr add \(podV6)/64 dev \(a) nodad; ip -n \(remote) -6 addr add \(remoteV6)/64 dev \(a)r nodad" : "ip netns exec \(pod) sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
      ip -n \(pod) link set \(a) up; ip -n \(remote) link set \(a)r up
      ip -n \(pod) link set \(podLinkBName) up; ip -n \(remote) link set \(podLinkBName)r up
      ip -n \(pod) route add default via \(remoteV4)
      \(ipv6 ? "ip -n \(pod) -6 route add default via \(remoteV6)" : "true")
      """
    let result = try Self.run("/bin/sh", ["-c", script])
    if result.status != 0 {
      close()
      throw SetupError(description: "creating the namespaces failed: \(result.stderr)")
    }
  }

  struct SetupError: Error, CustomStringConvertible { var description: String }

  func close() {
    // SIGKILL: a child can inherit a blocked SIGTERM from the test runner's threads.
    for server in servers where server.isRunning { kill(server.processIdentifier, SIGKILL) }
    for server in servers { _ = ChildProcess.reap(server, timeout: .seconds(10)) }
    servers = []
    _ = try? Self.run(
      "/bin/sh", ["-c", "ip netns del \(pod) 2>/dev/null; ip netns del \(remote) 2>/dev/null; true"])
  }

  deinit { close() }

  @discardableResult
  static func run(_ executable: String, _ arguments: [String]) throws -> Output {
    let child = try ChildProcess.run(executable, arguments, timeout: .seconds(120))
    return Output(
      status: child.termination.exitStatusOrFailure, stdout: child.stdoutText,
      stderr: child.exitStatus == nil ? "\(child.termination)\n" + child.stderrText : child.stderrText)
  }

  /// Runs a command inside a namespace.
  @discardableResult
  func exec(_ namespace: String, _ arguments: [String]) throws -> Output {
    try Self.run("/usr/sbin/ip", ["netns", "exec", namespace] + arguments)
  }

  /// `pilotfish istio-iptables ARGS` in the pod namespace.
  @discardableResult
  func interception(_ arguments: [String]) throws -> Output {
    try exec(pod, [Self.pilotfish, "istio-iptables"] + arguments)
  }

  /// Starts a capture_echo server in `namespace` and waits until it listens.
  func serve(in namespace: String, tcp: [Int], udp: [Int] = []) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    process.arguments = [
      "netns", "exec", namespace, Self.python, Self.echo, "serve", "--seconds", "120",
      "--tcp", tcp.map(String.init).joined(separator: ","), "--udp",
      udp.map(String.init).joined(separator: ","),
    ]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    servers.append(process)
    let line = out.fileHandleForReading.availableLine()
    guard line == "ready" else {
      throw SetupError(description: "echo server in \(namespace) did not start: \(line)")
    }
  }

  /// Connects from `namespace` as uid/gid and returns the server's line ("port=15001 orig=...") or "error: ...".
  func connect(
    from namespace: String, uid: UInt32 = 1000, gid: UInt32? = nil, to host: String, port: Int,
    udp: Bool = false
  ) throws -> String {
    var arguments = [
      "setpriv", "--reuid", "\(uid)", "--regid", "\(gid ?? uid)", "--clear-groups", Self.python, Self.echo,
      "connect", host, "\(port)", "--timeout", "2",
    ]
    if udp { arguments.append("--udp") }
    return try exec(namespace, arguments).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// The listener port a connection landed on, or nil for an error.
  func landed(
    from namespace: String, uid: UInt32 = 1000, gid: UInt32? = nil, to host: String, port: Int,
    udp: Bool = false
  ) throws -> Int? {
    let line = try connect(from: namespace, uid: uid, gid: gid, to: host, port: port, udp: udp)
    guard line.hasPrefix("port=") else { return nil }
    return Int(line.dropFirst(5).prefix { $0.isNumber })
  }

  /// Everything netfilter and policy routing hold in the pod, with counters and dates removed, for comparing
  /// the namespace before and after.
  func netfilterState() throws -> String {
    var state = ""
    for command in [
      ["nft", "list", "ruleset"], ["iptables-legacy-save"], ["ip6tables-legacy-save"], ["ip", "-4", "rule"],
      ["ip", "-6", "rule"], ["ip", "-4", "route", "show", "table", "all"],
      ["ip", "-6", "addr", "show", "dev", "lo"],
    ] {
      let output = try exec(pod, command).stdout
      for line in output.split(separator: "\n") {
        // Empty built-in tables and chains that a listing instantiates are not state.
        if line.hasPrefix("#") || line.hasPrefix("*") || line.hasPrefix(":") && line.contains("ACCEPT")
          || line == "COMMIT"
        {
          continue
        }
        if line.contains("valid_lft") { continue }
        state +=
          line.replacingOccurrences(of: #"packets \d+ bytes \d+"#, with: "", options: .regularExpression)
          + "\n"
      }
    }
    return state
  }
}

extension FileHandle {
  /// Reads one line (blocking), without the newline.
  func availableLine() -> String {
    var bytes: [UInt8] = []
    while true {
      let chunk = readData(ofLength: 1)
      guard let byte = chunk.first, byte != 10 else { break }
      bytes.append(byte)
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

/// The gate for these tests: root is needed; with CI=true or PILOTFISH_PRIVILEGED_TESTS=1 they must run.
enum Privilege {
  static var mandatory: Bool {
    let env = ProcessInfo.processInfo.environment
    return env["CI"] == "true" || env["PILOTFISH_PRIVILEGED_TESTS"] == "1"
  }

  /// Use as `.enabled(if: Privilege.shouldRun, ...)`: false (a visible skip) only when a skip is acceptable.
  static var shouldRun: Bool { getuid() == 0 || mandatory }

  static func require(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if getuid() == 0 { return true }
    if mandatory {
      Issue.record(
        "needs root (network namespaces); CI=true makes privileged tests mandatory",
        sourceLocation: sourceLocation)
    }
    return false
  }
}
