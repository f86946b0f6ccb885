internal import Foundation
internal import TestSupport
internal import Testing

#if canImport(Glibc)
  internal import Glibc
#endif

/// The built `pilotfish istio-iptables` on out-of-range numbers and durations: every one is exit status 1 with
/// a message naming the flag or variable, never a trap (a signal). `--dry-run` keeps the host untouched.
@Suite struct IstioIptablesCommandLineTests {
  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  static func pilotfish() throws -> String { try builtProduct("pilotfish", packageRoot: packageRoot.path) }

  /// Runs the command (bounded: 30 s): its exit code (nil if it was killed by a signal or timed out), the
  /// signal that killed it, and its standard error.
  static func run(_ arguments: [String], environment extra: [String: String]) throws -> (
    exitCode: Int32?, signal: Int32?, stderr: String
  ) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try pilotfish())
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    for key in environment.keys where key.hasPrefix("ISTIO_") || key == "PROBE_TIMEOUT" {
      environment[key] = nil
    }
    for (key, value) in extra { environment[key] = value }
    process.environment = environment
    // A file, not a pipe: a pipe's write end can leak into a child another test spawns at the same moment,
    // and then end-of-file never comes.
    let errorsPath = NSTemporaryDirectory() + "pf-iptables-cli-" + UUID().uuidString
    FileManager.default.createFile(atPath: errorsPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errorsPath) }
    process.standardError = FileHandle(forWritingAtPath: errorsPath)
    process.standardOutput = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    func stderr() -> String { (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? "" }
    // Foundation reaps the child itself (then waitpid here fails), or does not notice under the test
    // runner's signal mask (then waitpid here reaps it): both are watched, with a deadline.
    let pid = process.processIdentifier
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
      if !process.isRunning {
        let status = process.terminationStatus
        return process.terminationReason == .uncaughtSignal ? (nil, status, stderr()) : (status, nil, stderr())
      }
      var status: Int32 = 0
      if waitpid(pid, &status, WNOHANG) == pid {
        return status & 0x7f == 0 ? ((status >> 8) & 0xff, nil, stderr()) : (nil, status & 0x7f, stderr())
      }
      usleep(10_000)
    }
    kill(pid, SIGKILL)
    return (nil, nil, "timed out; stderr: \(stderr())")
  }

  struct Case: CustomTestStringConvertible, Sendable {
    var arguments: [String]
    var environment: [String: String] = [:]
    var message: String
    var testDescription: String { (arguments + environment.map { "\($0)=\($1)" }).joined(separator: " ") }
  }

  static let cases: [Case] = [
    Case(arguments: ["--probe-timeout", "inf"], message: "--probe-timeout: not a duration"),
    Case(arguments: ["--probe-timeout", "nan"], message: "--probe-timeout: not a duration"),
    Case(arguments: ["--probe-timeout=-inf"], message: "--probe-timeout: not a duration"),
    Case(arguments: ["--probe-timeout", "1e300"], message: "--probe-timeout: longer than 86400s"),
    Case(arguments: ["--probe-timeout", "1e300s"], message: "--probe-timeout: longer than 86400s"),
    Case(arguments: ["--probe-timeout", "3000000h"], message: "--probe-timeout: longer than 86400s"),
    Case(arguments: [], environment: ["PROBE_TIMEOUT": "inf"], message: "PROBE_TIMEOUT (environment"),
    Case(arguments: ["-p", "99999999999999999999"], message: "-p/--envoy-port: not a port number"),
    Case(arguments: ["-u", "99999999999"], message: "-u/--proxy-uid"),
    Case(arguments: ["-t", "99999999999"], message: "-t/--istio-inbound-tproxy-mark"),
    Case(arguments: ["--iptables-probe-port=70000"], message: "--iptables-probe-port: not a port number"),
  ]

  @Test(arguments: cases) func outOfRangeInputExitsOneNamingTheInput(_ c: Case) throws {
    let result = try Self.run(["istio-iptables", "--dry-run"] + c.arguments, environment: c.environment)
    // A trap would show as SIGILL/SIGTRAP.
    #expect(result.signal == nil, "killed by signal \(result.signal ?? 0): \(result.stderr)")
    #expect(result.exitCode == 1, "\(result.stderr)")
    #expect(result.stderr.contains(c.message), "\(result.stderr)")
  }
}
