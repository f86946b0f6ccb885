import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@testable import Agent

#if canImport(Glibc)
  import Glibc
#endif

/// Log messages kept in memory, for tests that check what was logged.
final class CapturedLogs: Sendable {
  private let lines = Mutex<[String]>([])

  var messages: [String] { lines.withLock { $0 } }

  func logger(_ label: String) -> Logger {
    Logger(label: label) { _ in Handler(sink: self) }
  }

  private struct Handler: LogHandler {
    let sink: CapturedLogs
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
      sink.lines.withLock { $0.append("\(event.level): \(event.message)") }
    }
  }
}

/// The limits of the agent's HTTP servers (status 15020 and merged metrics 15090, both a `StatusServer`),
/// against a server in this process with small limits and raw loopback sockets: connections beyond the cap
/// are closed on accept and the server serves again once connections close; a connection stuck before its
/// head, in its body or idle after an answer is closed at that phase's deadline.
@Suite("status server limits")
struct StatusServerLimitsTests {
  /// A status or metrics server on 127.0.0.1:0 with its own agent state and no proxy: `/stats/prometheus`
  /// answers 200 with the agent's own metrics.
  final class ServerUnderTest: Sendable {
    let port: Int
    let logs = CapturedLogs()
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(role: StatusRoutes.Role, limits: StatusServer.Limits) async throws {
      let logger = logs.logger("status-limits-test")
      let state = AgentState()
      let routes = StatusRoutes(
        role: role, readiness: ReadinessProbe(adminPort: 1, checkConfig: false, state: state, logger: logger),
        metrics: MetricsEndpoint(
          adminPort: 1, mergeProxyStats: false, application: nil, state: state, logger: logger),
        probes: AppProbeRunner(probers: AppProbers(), target: "127.0.0.1", sourceAddress: nil, statusPort: 0),
        metricsLocalhostOnly: false, quit: {}, drain: {})
      let (addresses, listening) = AsyncStream<SocketAddress>.makeStream()
      var server = StatusServer(
        host: "127.0.0.1", port: 0, routes: routes, logger: logger, onListening: { listening.yield($0) })
      server.limits = limits
      let group = ServiceGroup(services: [server], logger: logger)
      self.group = group
      task = Task {
        defer { listening.finish() }
        try await group.run()
      }
      var iterator = addresses.makeAsyncIterator()
      port = try #require(await iterator.next()?.port)
    }

    func stop() async {
      await group.triggerGracefulShutdown()
      _ = try? await task.value
    }
  }

  /// How a read on a connection the test is not writing to ended.
  enum ReadEnd: Equatable {
    /// EOF or a reset: the server closed the connection.
    case closed
    /// Nothing arrived and the connection stayed open for the whole wait.
    case stillOpen
    /// The server sent bytes.
    case data
  }

  /// Waits up to `seconds` for `client` to be closed by the server.
  static func readEnd(_ client: LoopbackClient, seconds: Int) async throws -> ReadEnd {
    try await onThread {
      var timeout = timeval(tv_sec: seconds, tv_usec: 0)
      setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      var byte: UInt8 = 0
      let n = read(client.fd, &byte, 1)
      if n > 0 { return .data }
      if n == 0 || errno == ECONNRESET { return .closed }
      return .stillOpen
    }
  }

  /// Sends a keep-alive GET for `path` and reads its response (head and `Content-Length` body); nil when the
  /// connection ends first or nothing arrives within 10 s.
  static func get(_ path: String, on client: LoopbackClient) async throws -> (status: Int, body: String)? {
    try await onThread {
      guard client.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") else { return nil }
      var received: [UInt8] = []
      var buffer = [UInt8](repeating: 0, count: 65536)
      while true {
        let text = String(decoding: received, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n") {
          let head = text[..<end.lowerBound].lowercased()
          let length =
            head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
          let body = text[end.upperBound...]
          if body.utf8.count >= length {
            let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            return (status, String(body))
          }
        }
        let n = read(client.fd, &buffer, buffer.count)
        if n <= 0 { return nil }
        received += buffer[0..<n]
      }
    }
  }

  /// A fresh connection's answer to `path`, or nil when the connection is refused, closed or silent.
  static func getOnce(_ path: String, port: Int) async -> Int? {
    guard let client = try? await onThread({ try LoopbackClient(port: port) }) else { return nil }
    defer { client.close() }
    guard let answer = try? await get(path, on: client) else { return nil }
    return answer.status
  }

  @Test(arguments: [StatusRoutes.Role.status, .metrics])
  func connectionsBeyondTheCapAreClosedAndServedAgainOnceOthersClose(role: StatusRoutes.Role) async throws {
    var limits = StatusServer.Limits()
    limits.maxConnections = 8
    let server = try await ServerUnderTest(role: role, limits: limits)
    let port = server.port
    // Eight keep-alive connections, each answered once (so the server has accepted and counted it), then
    // left idle.
    var held: [LoopbackClient] = []
    defer { for client in held { client.close() } }
    for _ in 0..<8 {
      let client = try await onThread { try LoopbackClient(port: port) }
      held.append(client)
      #expect(try await Self.get("/stats/prometheus", on: client)?.status == 200)
    }
    // The ninth: the kernel completes the handshake, the server closes it on accept. Without the cap it would
    // stay open, waiting for its request head (10 s by default).
    let extra = try await onThread { try LoopbackClient(port: port) }
    defer { extra.close() }
    let started = ContinuousClock.now
    #expect(try await Self.readEnd(extra, seconds: 5) == .closed)
    #expect(ContinuousClock.now - started < .seconds(5))
    #expect(
      server.logs.messages.contains { $0.hasSuffix("server: 8 connections open; closing a new one") },
      "\(server.logs.messages)")
    // The held connections still work; once they close, new connections are served again.
    #expect(try await Self.get("/stats/prometheus", on: held[0])?.status == 200)
    for client in held { shutdown(client.fd, Int32(SHUT_RDWR)) }
    #expect(await eventually { await Self.getOnce("/stats/prometheus", port: port) == 200 })
    await server.stop()
  }

  /// Which deadline a connection is caught by.
  enum Phase: String, CaseIterable, CustomTestStringConvertible {
    case head, body, idle
    var testDescription: String { rawValue }
  }

  @Test(arguments: Phase.allCases)
  func aStalledConnectionIsClosedAtItsPhaseDeadline(phase: Phase) async throws {
    // Only the phase under test has a short deadline: without it, the connection would stay open a minute.
    var limits = StatusServer.Limits()
    limits.requestHeadTimeout = phase == .head ? .milliseconds(300) : .seconds(60)
    limits.requestTimeout = phase == .body ? .milliseconds(300) : .seconds(60)
    limits.idleTimeout = phase == .idle ? .milliseconds(300) : .seconds(60)
    let server = try await ServerUnderTest(role: .status, limits: limits)
    let port = server.port
    let client = try await onThread { try LoopbackClient(port: port) }
    defer { client.close() }
    switch phase {
    case .head:
      #expect(client.send("GET /stats/prometheus HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
    case .body:
      #expect(
        client.send(
          "POST /stats/prometheus HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789"))
    case .idle:
      #expect(try await Self.get("/stats/prometheus", on: client)?.status == 200)
    }
    #expect(try await Self.readEnd(client, seconds: 10) == .closed)
    await server.stop()
  }
}
