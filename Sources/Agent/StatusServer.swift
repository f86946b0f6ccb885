package import Logging
package import NIOCore
package import NIOHTTP1
package import NIOPosix
internal import ServiceLifecycle
internal import Synchronization

/// One request to the status or metrics server, body read whole.
package struct StatusRequest: Sendable {
  package var method: String
  package var path: String
  package var query: String?
  package var headers: [(String, String)]
  package var remoteAddress: SocketAddress?

  package var isFromLoopback: Bool {
    guard let ip = remoteAddress?.ipAddress else { return false }
    return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
  }
}

/// The answer, and what to do once it has been written (`/quitquitquit` stops the agent after answering).
package struct StatusReply: Sendable {
  package var status: Int
  package var contentType: String = "text/plain; charset=utf-8"
  package var body: String = ""
  package var afterWrite: (@Sendable () -> Void)?

  package init(
    status: Int, contentType: String = "text/plain; charset=utf-8", body: String = "",
    afterWrite: (@Sendable () -> Void)? = nil
  ) {
    self.status = status
    self.contentType = contentType
    self.body = body
    self.afterWrite = afterWrite
  }
}

/// pilot-agent's status endpoints (`status/server.go`), for the status port (every route) or the metrics port
/// (only the merged `/stats/prometheus`).
package struct StatusRoutes: Sendable {
  package enum Role: String, Sendable {
    case status, metrics
  }

  package var role: Role
  package var readiness: ReadinessProbe
  package var metrics: MetricsEndpoint
  package var probes: AppProbeRunner
  package var metricsLocalhostOnly: Bool
  package var quit: @Sendable () -> Void
  package var drain: @Sendable () -> Void

  package init(
    role: Role, readiness: ReadinessProbe, metrics: MetricsEndpoint, probes: AppProbeRunner,
    metricsLocalhostOnly: Bool, quit: @escaping @Sendable () -> Void, drain: @escaping @Sendable () -> Void
  ) {
    self.role = role
    self.readiness = readiness
    self.metrics = metrics
    self.probes = probes
    self.metricsLocalhostOnly = metricsLocalhostOnly
    self.quit = quit
    self.drain = drain
  }

  package func respond(to request: StatusRequest) async -> StatusReply {
    if request.path == "/stats/prometheus" || request.path == "/metrics" {
      if metricsLocalhostOnly && !request.isFromLoopback {
        return StatusReply(status: 403, body: "forbidden\n")
      }
      let result = await metrics.scrape(headers: request.headers, query: request.query)
      return StatusReply(status: 200, contentType: result.contentType, body: result.body)
    }
    guard role == .status else { return StatusReply(status: 404, body: "not found\n") }
    switch request.path {
    case "/healthz/ready":
      return StatusReply(status: await readiness.check() == nil ? 200 : 503)
    case "/quitquitquit":
      guard request.method == "POST" else { return StatusReply(status: 405, body: "method not allowed\n") }
      guard request.isFromLoopback else { return StatusReply(status: 403, body: "forbidden\n") }
      return StatusReply(status: 200, body: "OK", afterWrite: quit)
    case "/drain":
      guard request.method == "POST" else { return StatusReply(status: 405, body: "method not allowed\n") }
      guard request.isFromLoopback else { return StatusReply(status: 403, body: "forbidden\n") }
      return StatusReply(status: 200, body: "OK", afterWrite: drain)
    default:
      if request.path.hasPrefix("/app-health/") || request.path.hasPrefix("/app-lifecycle/") {
        let result = await probes.probe(path: request.path, headers: request.headers)
        return StatusReply(status: result.status, body: result.body)
      }
      return StatusReply(status: 404, body: "not found\n")
    }
  }
}

/// The status server (15020) or the merged-metrics server (15090): HTTP/1.1 over NIO, requests answered by
/// ``StatusRoutes`` in async code, one child task per connection. A swift-service-lifecycle `Service`:
/// graceful shutdown stops accepting and closes open connections (it comes after the proxy has stopped).
///
/// Limits (``Limits``), so a client cannot hold the agent's ports: a connection must deliver a complete
/// request head within 10 s of opening (slowloris), the whole request within 30 s of its head, and the next
/// request within 60 s of the previous answer, or it is closed; at most 512 connections are open at once
/// (more are closed on accept, and logged). Request bodies are never kept.
package struct StatusServer: Service, Sendable {
  package struct Limits: Sendable {
    package var requestHeadTimeout: Duration = .seconds(10)
    package var requestTimeout: Duration = .seconds(30)
    package var idleTimeout: Duration = .seconds(60)
    package var maxConnections = 512
    package init() {}
  }

  package var host: String
  package var port: Int
  package var limits = Limits()
  private let routes: StatusRoutes
  private let logger: Logger
  private let group: any EventLoopGroup
  private let onListening: @Sendable (SocketAddress) -> Void

  package init(
    host: String, port: Int, routes: StatusRoutes, logger: Logger,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
  ) {
    self.host = host
    self.port = port
    self.routes = routes
    self.logger = logger
    self.group = group
    self.onListening = onListening
  }

  typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

  /// Binds now, so a port collision fails before anything else starts.
  package func bind() async throws(AgentError) -> NIOAsyncChannel<
    NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never
  > {
    do {
      return try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: host, port: port) { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            return try Connection(wrappingChannelSynchronously: channel)
          }
        }
    } catch {
      throw AgentError(
        .server, "cannot listen on \(host):\(port) for the \(routes.role.rawValue) server", cause: error)
    }
  }

  package func run() async throws {
    try await serve(try await bind())
  }

  package func serve(
    _ server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
  ) async throws {
    if let address = server.channel.localAddress {
      logger.info(
        "\(routes.role.rawValue) server listening", metadata: ["agent.server.address": "\(address)"])
      onListening(address)
    }
    let routes = self.routes
    let logger = self.logger
    let limits = self.limits
    let open = ConnectionCount()
    try await withThrowingDiscardingTaskGroup { connections in
      try await server.executeThenClose { inbound in
        for try await connection in inbound.cancelOnGracefulShutdown() {
          guard open.enter() <= limits.maxConnections else {
            open.leave()
            logger.warning(
              "\(routes.role.rawValue) server: \(limits.maxConnections) connections open; closing a new one",
              metadata: ["agent.server.remote": "\(connection.channel.remoteAddress.map { "\($0)" } ?? "?")"])
            // Through `executeThenClose`: a wrapper dropped without it traps ("Deinited NIOAsyncWriter
            // without calling finish()"), which took the agent down on the first connection over the cap.
            try? await connection.executeThenClose { _, _ in }
            continue
          }
          connections.addTask {
            defer { open.leave() }
            await withGracefulShutdownHandler {
              do {
                try await Self.handle(connection, routes: routes, limits: limits)
              } catch {
                logger.debug("status connection ended: \(error)")
              }
            } onGracefulShutdown: {
              connection.channel.close(promise: nil)
            }
          }
        }
      }
    }
  }

  private static func handle(_ connection: Connection, routes: StatusRoutes, limits: Limits) async throws {
    let remote = connection.channel.remoteAddress
    let timer = ConnectionDeadline(channel: connection.channel)
    defer { timer.disarm() }
    timer.arm(limits.requestHeadTimeout)
    try await connection.executeThenClose { inbound, outbound in
      var head: HTTPRequestHead?
      for try await part in inbound {
        switch part {
        case .head(let h):
          head = h
          timer.arm(limits.requestTimeout)
        case .body: break
        case .end:
          timer.disarm()
          guard let request = head else { continue }
          head = nil
          let split = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
          let reply = await routes.respond(
            to: StatusRequest(
              method: request.method.rawValue, path: String(split.first ?? ""),
              query: split.count > 1 ? String(split[1]) : nil,
              headers: request.headers.map { ($0.name, $0.value) }, remoteAddress: remote))
          var headers = HTTPHeaders()
          headers.add(name: "Content-Type", value: reply.contentType)
          headers.add(name: "Content-Length", value: String(reply.body.utf8.count))
          if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
          try await outbound.write(
            .head(
              HTTPResponseHead(
                version: request.version, status: .init(statusCode: reply.status), headers: headers)))
          if !reply.body.isEmpty {
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: reply.body))))
          }
          try await outbound.write(.end(nil))
          reply.afterWrite?()
          if !request.isKeepAlive { return }
          timer.arm(limits.idleTimeout)
        }
      }
    }
  }
}

/// The number of open connections, shared by a server's connection tasks.
final class ConnectionCount: Sendable {
  private let value = Atomic<Int>(0)

  /// Counts one more connection; returns the new count.
  func enter() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
  func leave() { value.wrappingSubtract(1, ordering: .relaxed) }
}

/// Closes a connection when the current phase's deadline passes; re-arming replaces the deadline.
final class ConnectionDeadline: Sendable {
  private let channel: any Channel
  private let scheduled = Mutex<Scheduled<Void>?>(nil)

  init(channel: any Channel) { self.channel = channel }

  func arm(_ timeout: Duration) {
    let channel = self.channel
    let task = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { channel.close(promise: nil) }
    scheduled.withLock { previous in
      previous?.cancel()
      previous = task
    }
  }

  func disarm() {
    scheduled.withLock { previous in
      previous?.cancel()
      previous = nil
    }
  }
}
