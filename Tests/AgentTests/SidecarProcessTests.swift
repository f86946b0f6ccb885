import Foundation
import Testing

@testable import Agent

#if canImport(Glibc)
  import Glibc
#endif

/// Root-only tests run as root, and must run (fail instead of skipping) when `CI=true` or
/// `PILOTFISH_PRIVILEGED_TESTS=1`.
enum AgentPrivileged {
  static var mandatory: Bool {
    let env = ProcessInfo.processInfo.environment
    return env["CI"] == "true" || env["PILOTFISH_PRIVILEGED_TESTS"] == "1"
  }
  static var shouldRun: Bool { geteuid() == 0 || mandatory }
}

/// Whether `pid` is gone: no such process, or a zombie nobody has reaped yet (it no longer holds ports).
func processGone(_ pid: Int32) -> Bool {
  if kill(pid, 0) != 0 && errno == ESRCH { return true }
  guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
    let close = stat.lastIndex(of: ")")
  else { return true }
  return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}

/// The agent as an operating-system process: what happens to the proxy when the agent dies, the descriptor
/// limit, and a bootstrap the proxy's uid could not read.
@Suite(.serialized) struct SidecarProcessTests {
  func proxyPID(_ sidecar: SidecarUnderTest) -> Int32? {
    guard let line = sidecar.record.last(where: { $0.hasPrefix("start pid=") }) else { return nil }
    return Int32(line.dropFirst("start pid=".count).prefix { $0.isNumber })
  }

  /// Before PR_SET_PDEATHSIG the fake proxy kept running (an orphan holding the admin port) after SIGKILL.
  @Test func proxyDiesWhenTheAgentIsKilled() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let pid = try #require(proxyPID(sidecar))
    #expect(!processGone(pid))
    sidecar.signal(SIGKILL)
    // Reaped by Foundation (status 9) or by the harness's waitpid (128 + 9).
    let status = await sidecar.waitForExit()
    #expect(status == SIGKILL || status == 128 + SIGKILL, "\(String(describing: status))")
    #expect(await eventually(timeout: .seconds(5)) { processGone(pid) }, "proxy \(pid) outlived its agent")
  }

  /// The parent-death signal follows the thread that forked the proxy: if that were a Swift-concurrency pool
  /// thread that exits when idle, the proxy would be killed while the agent is still running.
  @Test func proxySurvivesAnIdleAgent() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let pid = try #require(proxyPID(sidecar))
    // Idle: no request to the agent for 12 s; the proxy must stay the same process the whole time.
    let deadline = ContinuousClock.now + .seconds(12)
    while ContinuousClock.now < deadline {
      #expect(!processGone(pid), "proxy \(pid) died while the agent was idle: \(sidecar.stderr)")
      if processGone(pid) { break }
      try await Task.sleep(for: .milliseconds(250))
    }
    #expect(sidecar.process.isRunning)
    #expect(sidecar.record.filter { $0.hasPrefix("start ") }.count == 1, "\(sidecar.record)")
    #expect(await sidecar.status("/healthz/ready") == 200)
  }

  /// The agent raises RLIMIT_NOFILE's soft limit to the hard limit (started here with a soft limit of 256).
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") || AgentPrivileged.mandatory))
  func openFilesSoftLimitIsRaisedToTheHardLimit() async throws {
    var limit = rlimit()
    #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
    try #require(limit.rlim_max > 256, "hard limit \(limit.rlim_max) leaves nothing to raise")
    let sidecar = try SidecarUnderTest(start: false)
    defer { sidecar.cleanUp() }
    let pilotfish = try #require(sidecar.process.executableURL?.path)
    sidecar.process.arguments = ["--nofile=256:\(limit.rlim_max)", pilotfish] + (sidecar.process.arguments ?? [])
    sidecar.process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
    try sidecar.process.run()
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let limits = try String(contentsOfFile: "/proc/\(sidecar.process.processIdentifier)/limits", encoding: .utf8)
    let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
    #expect(fields.count >= 5 && fields[3] == "\(limit.rlim_max)", "\(line)")
    #expect(sidecar.stderr.contains("agent.rlimit.nofile.soft=\(limit.rlim_max)"), "\(sidecar.stderr)")
  }

  /// Run as root from a directory uid 1337 cannot search, the agent used to start the proxy, which failed on
  /// "permission denied" reading the bootstrap ten times over; now it refuses up front and says what to do.
  @Test(.enabled(if: AgentPrivileged.shouldRun)) func unreadableBootstrapForTheProxyUIDFailsUpFront() async throws
  {
    try #require(geteuid() == 0, "needs root (PILOTFISH_PRIVILEGED_TESTS=1 or CI=true makes it mandatory)")
    let sidecar = try SidecarUnderTest(start: false)
    defer { sidecar.cleanUp() }
    #expect(chmod(sidecar.root.path, 0o700) == 0)
    try sidecar.process.run()
    #expect(await sidecar.waitForExit() == 1, "stderr: \(sidecar.stderr)")
    #expect(
      sidecar.stderr.contains("the proxy runs as uid 1337 (gid 1337) and could not read its bootstrap: directory "
        + "\(sidecar.root.path) (mode 700, owner 0:0) cannot be searched by uid 1337"), "\(sidecar.stderr)")
    #expect(sidecar.stderr.contains("--proxy-uid -1"), "\(sidecar.stderr)")
    #expect(!sidecar.record.contains { $0.hasPrefix("start ") })
  }

  @Test func unreadableReasonWalksEveryDirectory() throws {
    let root = try TempRoot()
    defer { root.remove() }
    try root.write("a/b/file", "x")
    chmod(root.path, 0o755)
    chmod(root.path + "/a", 0o755)
    chmod(root.path + "/a/b", 0o750)
    chmod(root.path + "/a/b/file", 0o644)
    let owner = getuid()
    let other = owner == 4242 ? UInt32(4243) : UInt32(4242)
    #expect(PrivilegeDrop.unreadableReason(path: root.path + "/a/b/file", uid: owner, gid: getgid()) == nil)
    #expect(
      PrivilegeDrop.unreadableReason(path: root.path + "/a/b/file", uid: other, gid: other)?.contains(
        "directory \(root.path)/a/b (mode 750") == true)
    chmod(root.path + "/a/b", 0o755)
    chmod(root.path + "/a/b/file", 0o600)
    #expect(
      PrivilegeDrop.unreadableReason(path: root.path + "/a/b/file", uid: other, gid: other)?.contains(
        "file \(root.path)/a/b/file (mode 600") == true)
  }
}
