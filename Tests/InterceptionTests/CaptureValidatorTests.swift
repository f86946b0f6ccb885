internal import Foundation
internal import Glibc
internal import Interception
internal import Logging
internal import TestSupport
internal import Testing

/// `--run-validation` for real: each test creates a network namespace, installs redirect rules in
/// it with the `nft` binary, and runs `CaptureValidator` inside it.
@Suite(
  .serialized,
  .enabled(if: Privileged.shouldRun, "needs root for network namespaces and nftables"))
struct CaptureValidatorTests {
  static let proxyUID: UInt32 = 1337
  static let appUID: UInt32 = 1000

  /// The Istio shape: the proxy's own traffic over lo to a non-loopback address is inbound
  /// (15006), anything else to the probe address is outbound (15001).
  static let istioLikeRules = """
    table inet pfval {
      chain output {
        type nat hook output priority -100; policy accept;
        oifname "lo" ip daddr != 127.0.0.1 meta l4proto tcp meta skuid 1337 redirect to :15006
        meta l4proto tcp ip daddr 127.0.0.6 redirect to :15001
        meta l4proto tcp ip daddr 127.0.0.7 meta skgid 2000 redirect to :15006
        meta l4proto tcp ip daddr 127.0.0.7 redirect to :15001
      }
    }
    """

  static func probe(
    _ label: String, family: IPFamily = .v4, source: String? = nil, to destination: String = "127.0.0.6",
    port: UInt16 = 15002, uid: UInt32, gid: UInt32? = nil, expecting listener: UInt16
  ) -> CaptureProbe {
    CaptureProbe(
      family: family, source: source, destination: destination, port: port, uid: uid, gid: gid ?? uid,
      expectedListenerPort: listener, label: label)
  }

  static func validator(_ probes: [CaptureProbe], timeout: Duration = .seconds(5)) -> CaptureValidator {
    CaptureValidator(
      probes: probes, listenerPorts: [15001, 15006], timeout: timeout,
      logger: Logger(label: "pilotfish.tests.validator"))
  }

  // MARK: - Landing where the rules say

  @Test func proxyTrafficOverLoopbackLandsOnTheInboundPort() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }
    try namespace.nft(Self.istioLikeRules)

    let probe = Self.probe("inbound IPv4", source: "127.0.0.1", uid: Self.proxyUID, expecting: 15006)
    let results = try await namespace.run { try await Self.validator([probe]).run() }

    #expect(
      results == [
        CaptureProbeResult(probe: probe, landedOnPort: 15006, originalDestination: "127.0.0.6:15002")
      ])
  }

  @Test func applicationTrafficLandsOnTheOutboundPort() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }
    try namespace.nft(Self.istioLikeRules)

    let probe = Self.probe("outbound IPv4", uid: Self.appUID, expecting: 15001)
    let results = try await namespace.run { try await Self.validator([probe]).run() }

    #expect(
      results == [
        CaptureProbeResult(probe: probe, landedOnPort: 15001, originalDestination: "127.0.0.6:15002")
      ])
  }

  @Test func theSocketCarriesTheProbesGroupToo() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }
    try namespace.nft(Self.istioLikeRules)

    let probes = [
      Self.probe("gid 2000", to: "127.0.0.7", uid: Self.appUID, gid: 2000, expecting: 15006),
      Self.probe("gid 1000", to: "127.0.0.7", uid: Self.appUID, gid: 1000, expecting: 15001),
    ]
    let results = try await namespace.run { try await Self.validator(probes).run() }

    #expect(results.map(\.failure) == [nil, nil])
    #expect(results.map(\.landedOnPort) == [15006, 15001])
    #expect(results.map(\.originalDestination) == ["127.0.0.7:15002", "127.0.0.7:15002"])
    // The test thread's own credentials are untouched by the probes' switches.
    #expect(geteuid() == 0 && getegid() == 0)
  }

  @Test func ipv6ProbesLandWithTheirOriginalDestination() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }
    guard (try? namespace.ip("-6", "addr", "add", "fd00::1/128", "dev", "lo", "nodad")) != nil else {
      try Test.cancel("IPv6 is not available in a fresh network namespace here")
    }
    try namespace.nft(
      """
      table inet pfval {
        chain output {
          type nat hook output priority -100; policy accept;
          meta l4proto tcp ip6 daddr fd00::1 meta skuid 1337 redirect to :15006
          meta l4proto tcp ip6 daddr fd00::1 redirect to :15001
          meta l4proto tcp ip daddr 127.0.0.6 redirect to :15001
        }
      }
      """)

    let probes = [
      Self.probe("inbound IPv6", family: .v6, to: "fd00::1", uid: Self.proxyUID, expecting: 15006),
      Self.probe("outbound IPv6", family: .v6, to: "fd00:0::1", uid: Self.appUID, expecting: 15001),
      Self.probe("outbound IPv4", uid: Self.appUID, expecting: 15001),
    ]
    let results = try await namespace.run { try await Self.validator(probes).run() }

    #expect(results.map(\.failure) == [nil, nil, nil])
    #expect(results.map(\.landedOnPort) == [15006, 15001, 15001])
    // Canonical text, whatever spelling the probe used.
    #expect(results.map(\.originalDestination) == ["[fd00::1]:15002", "[fd00::1]:15002", "127.0.0.6:15002"])
  }

  // MARK: - Reporting what is wrong

  @Test func withoutRulesTheProbeIsRefusedWithinTheTimeout() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }

    let probe = Self.probe("inbound IPv4", uid: Self.proxyUID, expecting: 15006)
    let clock = ContinuousClock()
    let start = clock.now
    let results = try await namespace.run { try await Self.validator([probe], timeout: .seconds(1)).run() }
    let elapsed = start.duration(to: clock.now)

    let result = try #require(results.first)
    #expect(results.count == 1)
    #expect(result.landedOnPort == nil)
    #expect(result.failure?.hasPrefix("connection refused: no rule redirected 127.0.0.6:15002") == true)
    #expect(result.failure?.contains("1s") == true)
    // It kept retrying for the whole budget, and no longer.
    #expect(elapsed >= .milliseconds(900))
    #expect(elapsed < .seconds(3))
  }

  @Test func aRuleRedirectingToTheWrongPortIsNamed() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }
    try namespace.nft(
      """
      table inet pfval {
        chain output {
          type nat hook output priority -100; policy accept;
          meta l4proto tcp ip daddr 127.0.0.6 meta skuid 1337 redirect to :15001
          meta l4proto tcp ip daddr 127.0.0.6 redirect to :15099
          meta l4proto tcp ip daddr 127.0.0.8 redirect to :15098
        }
      }
      """)

    let probes = [
      Self.probe("inbound IPv4", uid: Self.proxyUID, expecting: 15006),
      Self.probe("outbound IPv4", uid: Self.appUID, expecting: 15001),
      Self.probe("stolen", to: "127.0.0.8", uid: Self.appUID, expecting: 15001),
    ]
    let results = try await namespace.run {
      // Something that is not the validator listens on 15098: it accepts and never reports.
      let stranger = try ValidatorHeldPort(port: 15098)
      defer { stranger.close() }
      return try await Self.validator(probes, timeout: .seconds(1)).run()
    }

    try #require(results.count == 3)
    #expect(
      results[0]
        == CaptureProbeResult(
          probe: probes[0], landedOnPort: 15001, originalDestination: "127.0.0.6:15002",
          failure: "landed on 15001, expected 15006"))
    // Nothing listens on 15099: the kernel refuses, and the validator says so.
    #expect(results[1].failure?.hasPrefix("connection refused") == true)
    #expect(
      results[2].failure
        == "timed out after 1s waiting for the listener's report: 127.0.0.8:15002 was accepted by "
        + "something other than the validator")
  }

  @Test func aConnectionStraightToAListenerIsNotMistakenForARedirect() async throws {
    guard Privileged.require() else { return }
    // With rules, conntrack reports the listener's own address as the original destination;
    // without any, it has no entry at all. Both must fail.
    for rules in [Self.istioLikeRules, nil] {
      let namespace = try ValidatorNamespace()
      defer { namespace.delete() }
      if let rules { try namespace.nft(rules) }

      let probe = Self.probe("direct", to: "127.0.0.1", port: 15001, uid: Self.appUID, expecting: 15001)
      let results = try await namespace.run { try await Self.validator([probe], timeout: .seconds(1)).run() }

      let result = try #require(results.first)
      #expect(result.landedOnPort == 15001)
      #expect(
        result.failure
          == "reached listener 15001 directly: no NAT rule rewrote the connection to 127.0.0.1:15001",
        "with rules: \(rules != nil)")
    }
  }

  @Test func aTakenListenerPortIsASetupFailureNamingTheAddress() async throws {
    guard Privileged.require() else { return }
    let namespace = try ValidatorNamespace()
    defer { namespace.delete() }

    let probe = Self.probe("inbound IPv4", uid: Self.proxyUID, expecting: 15006)
    let outcome = try await namespace.run {
      () async throws -> Result<[CaptureProbeResult], InterceptionError> in
      // Hold 0.0.0.0:15006 the way Envoy does, with SO_REUSEPORT, as the same user.
      let holder = try ValidatorHeldPort(port: 15006)
      defer { holder.close() }
      do throws(InterceptionError) {
        return .success(try await Self.validator([probe]).run())
      } catch {
        return .failure(error)
      }
    }

    guard case .failure(let error) = outcome else {
      Issue.record("the validator ran next to a listener holding its port: \(outcome)")
      return
    }
    #expect(error.code == .validationFailed)
    #expect(error.message.contains("0.0.0.0:15006"))
    #expect(error.message.contains("the proxy or another process may already hold it"))
  }

  @Test func noProbesMeansNothingToDo() async throws {
    #expect(try await Self.validator([]).run().isEmpty)
  }

  @Test func probesDescribeThemselves() {
    let probe = Self.probe(
      "outbound IPv6", family: .v6, source: "fd00::9", to: "fd00::2", uid: 1000, expecting: 15001)
    #expect(
      probe.description
        == "outbound IPv6: uid 1000 gid 1000 from fd00::9 to [fd00::2]:15002, expecting listener 15001")
  }
}

// MARK: - Namespace plumbing

/// A network namespace `pf-val-<random>` with `lo` up; `delete()` removes it.
private struct ValidatorNamespace: Sendable {
  let name: String

  init() throws {
    name = "pf-val-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    try Self.command(["ip", "netns", "add", name])
    do {
      try ip("link", "set", "lo", "up")
    } catch {
      delete()
      throw error
    }
  }

  func delete() {
    _ = try? Self.command(["ip", "netns", "del", name])
  }

  @discardableResult
  func ip(_ arguments: String...) throws -> String {
    try Self.command(["ip", "-n", name] + arguments)
  }

  /// Loads `ruleset` with the `nft` binary inside the namespace.
  func nft(_ ruleset: String) throws {
    try Self.command(["ip", "netns", "exec", name, "nft", "-f", "-"], input: ruleset)
  }

  /// Runs `body` inside the namespace (see `validatorInNamespace`).
  func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await validatorInNamespace(name, body)
  }

  @discardableResult
  static func command(_ argv: [String], input: String? = nil) throws -> String {
    let child = try ChildProcess.run(
      "/usr/bin/env", argv, input: Data((input ?? "").utf8), timeout: .seconds(60))
    let printed = child.stdout
    guard child.termination == .exited(0) else {
      throw ValidatorCommandFailed(
        argv: argv, status: child.termination.exitStatusOrFailure,
        stderr: "\(child.termination): " + child.stderrText)
    }
    return String(decoding: printed, as: UTF8.self)
  }
}

private struct ValidatorCommandFailed: Error, CustomStringConvertible {
  var argv: [String]
  var status: Int32
  var stderr: String
  var description: String { "\(argv.joined(separator: " ")) exited \(status): \(stderr)" }
}

/// Runs async `body` inside the network namespace `name`.
///
/// `inNetworkNamespace` moves one fresh thread into the namespace; that thread then serves as the
/// task executor `body` prefers, so `body` and everything it awaits run there, and whatever it
/// creates inherits the namespace: listening sockets, NIO's event loop thread, the probe threads.
/// A plain `Task` would run on Swift's cooperative pool, which is still in the host namespace.
/// The outer `Thread` keeps the blocking join off the cooperative pool.
private func validatorInNamespace<T: Sendable>(
  _ name: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    let thread = Thread {
      continuation.resume(
        with: Result { try inNetworkNamespace(name) { try ValidatorThreadExecutor.run(body) } })
    }
    thread.start()
  }
}

/// A task executor that runs every job on the thread that called `run`.
///
/// Invariant: jobs run only inside `run`, on its thread, in the order they were enqueued; `run`
/// returns once the task it started has finished and no job is left.
private final class ValidatorThreadExecutor: TaskExecutor, @unchecked Sendable {
  private let condition = NSCondition()
  private var jobs: [UnownedJob] = []
  private var finished = false

  /// Runs `body` as a task whose jobs all execute on the calling thread; blocks until it is done.
  static func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let executor = ValidatorThreadExecutor()
    let outcome = ValidatorOutcome<T>()
    Task(executorPreference: executor) {
      do {
        outcome.set(.success(try await body()))
      } catch {
        outcome.set(.failure(error))
      }
      executor.finish()
    }
    executor.drain()
    return try outcome.get()
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    condition.lock()
    jobs.append(job)
    condition.signal()
    condition.unlock()
  }

  private func finish() {
    condition.lock()
    finished = true
    condition.signal()
    condition.unlock()
  }

  private func drain() {
    while true {
      condition.lock()
      while jobs.isEmpty && !finished { condition.wait() }
      guard !jobs.isEmpty else {
        condition.unlock()
        return
      }
      let job = jobs.removeFirst()
      condition.unlock()
      job.runSynchronously(on: asUnownedTaskExecutor())
    }
  }
}

/// A result handed from the executor's task to the thread waiting in `ValidatorThreadExecutor.run`.
private final class ValidatorOutcome<T: Sendable>: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Result<T, any Error>?

  func set(_ result: Result<T, any Error>) {
    lock.withLock { value = result }
  }

  func get() throws -> T {
    guard let value = lock.withLock({ value }) else {
      throw ValidatorCommandFailed(argv: ["validator task"], status: -1, stderr: "finished without a result")
    }
    return try value.get()
  }
}

/// A listening socket on `0.0.0.0:<port>` with SO_REUSEPORT, standing in for a running proxy or
/// any other process: it never accepts, so the kernel completes handshakes and nothing answers.
private struct ValidatorHeldPort: Sendable {
  let descriptor: Int32

  init(port: UInt16) throws {
    descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    var one: Int32 = 1
    setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = INADDR_ANY
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, listen(descriptor, 16) == 0 else {
      let code = errno
      Glibc.close(descriptor)
      throw POSIXError(.init(rawValue: code) ?? .EIO)
    }
  }

  func close() {
    Glibc.close(descriptor)
  }
}
