internal import Foundation
internal import Interception
internal import TestSupport
internal import Testing

/// TPROXY policy routing: the pure parts everywhere, the netlink parts for real inside a network
/// namespace each test creates and deletes.
@Suite(.serialized)
struct PolicyRoutingTests {
  static let dualStack = TProxyRouting(families: [.v4, .v6], ipv6PassthroughAddress: true)

  // MARK: - Without privileges

  @Test func describeListsTheIpCommandsInInstallOrder() {
    #expect(
      PolicyRouting.describe(Self.dualStack) == [
        "ip -4 rule add fwmark 1337 lookup 133",
        "ip -4 route add local 0.0.0.0/0 dev lo table 133",
        "ip -6 rule add fwmark 1337 lookup 133",
        "ip -6 route add local ::/0 dev lo table 133",
        "ip -6 addr add ::6/128 dev lo",
      ])
  }

  @Test func describeHonoursFamiliesMarkAndTable() {
    let v4Only = TProxyRouting(mark: 0x100, table: 1000, families: [.v4, .v4], ipv6PassthroughAddress: true)
    #expect(
      PolicyRouting.describe(v4Only) == [
        "ip -4 rule add fwmark 256 lookup 1000",
        "ip -4 route add local 0.0.0.0/0 dev lo table 1000",
      ])
    let v6NoAddress = TProxyRouting(families: [.v6], ipv6PassthroughAddress: false)
    #expect(
      PolicyRouting.describe(v6NoAddress) == [
        "ip -6 rule add fwmark 1337 lookup 133",
        "ip -6 route add local ::/0 dev lo table 133",
      ])
    #expect(PolicyRouting.describe(TProxyRouting(families: [], ipv6PassthroughAddress: true)).isEmpty)
  }

  @Test(arguments: [
    TProxyRouting(mark: 0, families: [.v4], ipv6PassthroughAddress: false),
    TProxyRouting(table: 0, families: [.v4], ipv6PassthroughAddress: false),
    TProxyRouting(table: 253, families: [.v4], ipv6PassthroughAddress: false),
    TProxyRouting(table: 254, families: [.v6], ipv6PassthroughAddress: false),
    TProxyRouting(table: 255, families: [.v4, .v6], ipv6PassthroughAddress: true),
  ])
  func dangerousMarksAndTablesAreRejectedBeforeTouchingTheKernel(_ r: TProxyRouting) {
    let expected = r.mark == 0 ? "fwmark 0" : "table \(r.table)"
    for operation in ["install", "remove", "installedPieces"] {
      do throws(InterceptionError) {
        switch operation {
        case "install": try PolicyRouting.install(r)
        case "remove": try PolicyRouting.remove(r)
        default: _ = try PolicyRouting.installedPieces(r)
        }
        Issue.record("\(operation) accepted \(r)")
      } catch {
        #expect(error.code == .invalidArgument, "\(operation)")
        #expect(error.message.contains(expected), "\(operation): \(error.message)")
      }
    }
  }

  // MARK: - In a network namespace

  @Test(.enabled(if: Privileged.shouldRun, "needs root for network namespaces"))
  func installIsExactIdempotentAndRemovable() throws {
    guard Privileged.require() else { return }
    let hostBefore = try Namespace.hostSnapshot()
    try Namespace.with { ns in
      let before = try ns.snapshot()
      #expect(try ns.run { try PolicyRouting.installedPieces(Self.dualStack) }.isEmpty)

      try ns.run { try PolicyRouting.install(Self.dualStack) }
      let installed = try ns.snapshot()
      #expect(installed.rules4.lines(containing: "fwmark 0x539 lookup 133").count == 1)
      #expect(installed.rules6.lines(containing: "fwmark 0x539 lookup 133").count == 1)
      #expect(installed.routes4.lines(containing: "local default dev lo").count == 1)
      #expect(installed.routes6.lines(containing: "local default dev lo").count == 1)
      #expect(installed.addresses6.lines(containing: "inet6 ::6/128").count == 1)
      // Nothing else changed: each output is the old one plus the new lines.
      #expect(installed.rules4.removing("fwmark 0x539 lookup 133") == before.rules4)
      #expect(installed.rules6.removing("fwmark 0x539 lookup 133") == before.rules6)
      #expect(before.routes4.isEmpty && before.routes6.isEmpty)
      #expect(installed.routes4.split(separator: "\n").count == 1)
      #expect(installed.routes6.split(separator: "\n").count == 1)

      try ns.run { try PolicyRouting.install(Self.dualStack) }
      #expect(try ns.snapshot() == installed, "a second install must change nothing")

      #expect(
        try ns.run { try PolicyRouting.installedPieces(Self.dualStack) } == [
          "ip rule fwmark 1337 lookup 133 (IPv4)",
          "ip route local 0.0.0.0/0 dev lo table 133 (IPv4)",
          "ip rule fwmark 1337 lookup 133 (IPv6)",
          "ip route local ::/0 dev lo table 133 (IPv6)",
          "ip addr ::6/128 dev lo (IPv6)",
        ])

      try ns.run { try PolicyRouting.remove(Self.dualStack) }
      #expect(try ns.snapshot() == before)
      #expect(try ns.run { try PolicyRouting.installedPieces(Self.dualStack) }.isEmpty)
      try ns.run { try PolicyRouting.remove(Self.dualStack) }  // absent pieces are fine
      #expect(try ns.snapshot() == before)
    }
    #expect(try Namespace.hostSnapshot() == hostBefore, "the host namespace must not be touched")
  }

  @Test(.enabled(if: Privileged.shouldRun, "needs root for network namespaces"))
  func largeTablesAndOtherMarksWork() throws {
    guard Privileged.require() else { return }
    let r = TProxyRouting(mark: 0x100, table: 100_000, families: [.v4, .v6], ipv6PassthroughAddress: false)
    try Namespace.with { ns in
      let before = try ns.snapshot(table: r.table)
      try ns.run { try PolicyRouting.install(r) }
      let after = try ns.snapshot(table: r.table)
      #expect(after.rules4.lines(containing: "fwmark 0x100 lookup 100000").count == 1)
      #expect(after.rules6.lines(containing: "fwmark 0x100 lookup 100000").count == 1)
      #expect(after.routes4.lines(containing: "local default dev lo").count == 1)
      #expect(after.routes6.lines(containing: "local default dev lo").count == 1)
      #expect(after.addresses6 == before.addresses6)
      #expect(try ns.run { try PolicyRouting.installedPieces(r) }.count == 4)
      try ns.run { try PolicyRouting.remove(r) }
      #expect(try ns.snapshot(table: r.table) == before)
    }
  }

  @Test(.enabled(if: Privileged.shouldRun, "needs root for network namespaces"))
  func removeDeletesDuplicatesButNotRulesWithOtherSelectors() throws {
    guard Privileged.require() else { return }
    let r = TProxyRouting(families: [.v4], ipv6PassthroughAddress: false)
    try Namespace.with { ns in
      // `ip rule add` twice stacks duplicates; a rule with an extra selector is someone else's.
      try ns.ip("-4", "rule", "add", "fwmark", "1337", "lookup", "133")
      try ns.ip("-4", "rule", "add", "fwmark", "1337", "lookup", "133")
      try ns.ip("-4", "rule", "add", "fwmark", "1337", "iif", "eth9", "lookup", "133")
      #expect(try ns.snapshot().rules4.lines(containing: "fwmark 0x539").count == 3)

      try ns.run { try PolicyRouting.install(r) }
      #expect(try ns.snapshot().rules4.lines(containing: "fwmark 0x539").count == 3, "no new duplicate")

      try ns.run { try PolicyRouting.remove(r) }
      let left = try ns.snapshot().rules4.lines(containing: "fwmark 0x539")
      #expect(left.count == 1)
      #expect(left.first?.contains("iif eth9") == true)
    }
  }

  @Test(.enabled(if: Privileged.shouldRun, "needs root for network namespaces"))
  func aFailurePartWayRollsBackWhatThisCallAdded() throws {
    guard Privileged.require() else { return }
    try Namespace.with { ns in
      // IPv6 refuses a route via a loopback that is down, after the IPv4 pieces and the IPv6
      // rule went in; those must be removed again.
      try ns.ip("link", "set", "lo", "down")
      let before = try ns.snapshot()
      let error = try ns.run { PolicyRouting.installError(Self.dualStack) }
      #expect(error?.code == .netlink)
      #expect(error?.message.contains("ip link set lo up") == true)
      #expect(error?.message.contains("were removed again") == true)
      #expect(try ns.snapshot() == before)
    }
  }

  @Test(.enabled(if: Privileged.shouldRun, "needs root for network namespaces"))
  func ipv6DisabledOnLoopbackIsUnsupportedNotAKernelError() throws {
    guard Privileged.require() else { return }
    try Namespace.with { ns in
      try ns.shell("echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6")
      let before = try ns.snapshot()
      let error = try ns.run { PolicyRouting.installError(Self.dualStack) }
      #expect(error?.code == .unsupported)
      #expect(error?.message.contains("disable_ipv6") == true)
      #expect(try ns.snapshot() == before)
      // IPv4 alone is still fine there.
      let v4 = TProxyRouting(families: [.v4], ipv6PassthroughAddress: true)
      try ns.run { try PolicyRouting.install(v4) }
      #expect(try ns.run { try PolicyRouting.installedPieces(v4) }.count == 2)
      try ns.run { try PolicyRouting.remove(v4) }
      #expect(try ns.snapshot() == before)
    }
  }
}

extension PolicyRouting {
  /// The error `install` throws, or nil.
  fileprivate static func installError(_ r: TProxyRouting) -> InterceptionError? {
    do throws(InterceptionError) {
      try install(r)
      return nil
    } catch {
      return error
    }
  }
}

// MARK: - Namespace fixture

/// The routing state the tests compare: the output of the `ip` commands an operator would run.
private struct RoutingSnapshot: Equatable {
  var rules4, rules6, routes4, routes6, addresses6: String
}

/// A network namespace `pf-nl-<random>` that exists for the duration of `with`'s body, with
/// `lo` up. Invariant: deleted again on every exit path of `with`.
private struct Namespace: Sendable {
  let name: String

  static func with(_ body: (Namespace) throws -> Void) throws {
    let name = "pf-nl-" + String(UInt32.random(in: .min ... .max), radix: 16)
    try run(["ip", "netns", "add", name])
    defer { _ = try? Namespace.run(["ip", "netns", "del", name]) }
    let ns = Namespace(name: name)
    try ns.ip("link", "set", "lo", "up")
    try body(ns)
  }

  /// Runs `body` on a thread inside the namespace.
  func run<T: Sendable>(_ body: @Sendable () throws -> T) throws -> T {
    try inNetworkNamespace(name, body)
  }

  @discardableResult
  func ip(_ args: String...) throws -> String {
    try Namespace.run(["ip", "netns", "exec", name, "ip"] + args)
  }

  func shell(_ script: String) throws {
    try Namespace.run(["ip", "netns", "exec", name, "sh", "-c", script])
  }

  func snapshot(table: UInt32 = 133) throws -> RoutingSnapshot {
    RoutingSnapshot(
      rules4: try ip("-4", "rule", "show"),
      rules6: try ip("-6", "rule", "show"),
      routes4: try Namespace.routes(["ip", "netns", "exec", name, "ip", "-4"], table),
      routes6: try Namespace.routes(["ip", "netns", "exec", name, "ip", "-6"], table),
      addresses6: try ip("-6", "addr", "show", "dev", "lo"))
  }

  static func hostSnapshot() throws -> RoutingSnapshot {
    RoutingSnapshot(
      rules4: try run(["ip", "-4", "rule", "show"]),
      rules6: try run(["ip", "-6", "rule", "show"]),
      routes4: try routes(["ip", "-4"], 133),
      routes6: try routes(["ip", "-6"], 133),
      addresses6: try run(["ip", "-6", "addr", "show", "dev", "lo"]))
  }

  /// `<prefix> route show table <table>`, where a table that was never created (the kernel
  /// then answers "FIB table does not exist") counts as empty, like an emptied one.
  static func routes(_ prefix: [String], _ table: UInt32) throws -> String {
    do {
      return try run(prefix + ["route", "show", "table", "\(table)"])
    } catch let error as CommandFailed where error.description.contains("FIB table does not exist") {
      return ""
    }
  }

  /// Runs a command (looked up in PATH) and returns its standard output; throws on a non-zero
  /// exit, with the standard error in the message.
  @discardableResult
  static func run(_ argv: [String]) throws -> String {
    let child = try ChildProcess.run("/usr/bin/env", argv, timeout: .seconds(60))
    let output = child.stdout
    guard child.termination == .exited(0) else {
      throw CommandFailed(
        description: "\(argv.joined(separator: " ")) ended with \(child.termination): " + child.stderrText)
    }
    return String(decoding: output, as: UTF8.self)
  }
}

private struct CommandFailed: Error, CustomStringConvertible {
  var description: String
}

extension String {
  /// The lines containing `text`.
  fileprivate func lines(containing text: String) -> [String] {
    split(separator: "\n").filter { $0.contains(text) }.map(String.init)
  }

  /// The text without the lines containing `text`.
  fileprivate func removing(_ text: String) -> String {
    split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains(text) }
      .joined(separator: "\n")
  }
}
