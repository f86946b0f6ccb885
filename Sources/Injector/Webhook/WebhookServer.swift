package import Logging
package import NIOCore
internal import NIOPosix
internal import ServiceLifecycle
internal import Synchronization

/// `pilotfish webhook`: the HTTPS AdmissionReview server, as a swift-service-lifecycle `Service`.
///
/// Each accepted connection is its own child task; a graceful shutdown stops accepting, asks every
/// connection to finish the request in flight and close, and returns once they have. Cancellation closes
/// connections at once.
package struct WebhookServer: Sendable {
  /// How long a connection may take, and how many may be open: a client cannot pin the webhook's memory or
  /// its accept queue. A request head must be complete 10 s after the connection opens (the TLS handshake
  /// included), the whole request 30 s after its head (the API server's longest webhook timeout is 30 s),
  /// and the next request must begin within 60 s of an answer; at most 1024 connections are open at once
  /// (new ones beyond are closed on accept, before their TLS handshake). Bodies are limited by
  /// `Configuration.maxBodyBytes` (413).
  package struct Limits: Sendable {
    package var requestHeadTimeout: Duration = .seconds(10)
    package var requestTimeout: Duration = .seconds(30)
    package var idleTimeout: Duration = .seconds(60)
    package var maxConnections = 1024
    package init() {}
  }

  package struct Configuration: Sendable {
    package var host: String
    package var port: Int
    package var certificateChainPath: String
    package var privateKeyPath: String
    /// How often the certificate files are checked even without new connections.
    package var certificatePollInterval: Duration
    package var maxBodyBytes: Int
    package var limits: Limits

    package init(
      host: String = "0.0.0.0", port: Int = 15017, certificateChainPath: String, privateKeyPath: String,
      certificatePollInterval: Duration = .seconds(5), maxBodyBytes: Int = 10 << 20, limits: Limits = .init()
    ) {
      self.limits = limits
      self.host = host
      self.port = port
      self.certificateChainPath = certificateChainPath
      self.privateKeyPath = privateKeyPath
      self.certificatePollInterval = certificatePollInterval
      self.maxBodyBytes = maxBodyBytes
    }
  }

  package let configuration: Configuration
  package let certificates: CertificateReloader
  private let router: WebhookRouter
  private let logger: Logger
  private let group: any EventLoopGroup
  private let onListening: @Sendable (SocketAddress) -> Void

  /// Loads the certificate now, so a bad file fails before anything listens.
  package init(
    configuration: Configuration, settings: InjectorSettings, logger: Logger,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
  ) throws(WebhookError) {
    self.configuration = configuration
    self.certificates = try CertificateReloader(
      certificateChainPath: configuration.certificateChainPath, privateKeyPath: configuration.privateKeyPath,
      logger: logger)
    self.router = WebhookRouter(reviewer: AdmissionReviewer(settings: settings))
    self.logger = logger
    self.group = group
    self.onListening = onListening
  }
}

extension WebhookServer: Service {
  package func run() async throws {
    let certificates = self.certificates
    let router = self.router
    let maxBodyBytes = configuration.maxBodyBytes
    let limits = configuration.limits
    let logger = self.logger
    let open = OpenConnections()
    let server: NIOAsyncChannel<any Channel, Never>
    do {
      server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .bind(host: configuration.host, port: configuration.port) { channel in
          channel.eventLoop.makeCompletedFuture {
            // Counted here, before any handler is added: the pipeline serves a connection on its own, so one
            // refused later by the accept loop could already have been answered.
            guard open.add(1) <= limits.maxConnections else {
              _ = open.add(-1)
              logger.warning("webhook: \(limits.maxConnections) connections open; closing a new one")
              channel.close(promise: nil)
              throw ChannelError.ioOnClosedChannel
            }
            channel.closeFuture.whenComplete { _ in _ = open.add(-1) }
            do {
              try channel.pipeline.syncOperations.configureWebhookPipeline(
                certificates: certificates, router: router, maxBodyBytes: maxBodyBytes, limits: limits)
            } catch {
              channel.close(promise: nil)
              throw error
            }
            return channel
          }
        }
    } catch {
      throw WebhookError(.bind, "cannot listen on \(configuration.host):\(configuration.port)", cause: error)
    }
    if let address = server.channel.localAddress {
      logger.info("webhook listening", metadata: ["injector.webhook.address": "\(address)"])
      onListening(address)
    }

    try await withThrowingTaskGroup(of: Void.self) { background in
      let interval = configuration.certificatePollInterval
      background.addTask {
        while !Task.isCancelled {
          try? await Task.sleep(for: interval)
          certificates.reloadIfChanged()
        }
      }
      defer { background.cancelAll() }
      try await acceptLoop(server)
    }
    logger.info("webhook stopped")
  }

  private func acceptLoop(_ server: NIOAsyncChannel<any Channel, Never>) async throws {
    let logger = self.logger
    try await withThrowingDiscardingTaskGroup { connections in
      try await server.executeThenClose { inbound in
        for try await connection in inbound.cancelOnGracefulShutdown() {
          connections.addTask {
            await Self.serve(connection, logger: logger)
          }
        }
      }
      logger.debug("webhook stopped accepting; finishing open connections")
    }
  }

  /// Waits for the connection to close: quiesces it on graceful shutdown, closes it on cancellation.
  private static func serve(_ connection: any Channel, logger: Logger) async {
    await withGracefulShutdownHandler {
      await withTaskCancellationHandler {
        do {
          try await connection.closeFuture.get()
        } catch {
          logger.debug("webhook connection ended: \(error)")
        }
      } onCancel: {
        connection.close(promise: nil)
      }
    } onGracefulShutdown: {
      connection.eventLoop.execute {
        connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
      }
    }
  }
}

extension WebhookServer {
  /// Runs the server in a `ServiceGroup` until SIGTERM or SIGINT (graceful, at most `drainTimeout`).
  package func runUntilSignalled(drainTimeout: Duration = .seconds(20)) async throws {
    var configuration = ServiceGroupConfiguration(
      services: [.init(service: self)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = drainTimeout
    try await ServiceGroup(configuration: configuration).run()
  }
}

/// How many connections the webhook has open (an `Atomic` in a class, so connection tasks can share it).
final class OpenConnections: Sendable {
  private let count = Atomic<Int>(0)

  /// Adds `delta` and returns the new count.
  func add(_ delta: Int) -> Int { count.wrappingAdd(delta, ordering: .relaxed).newValue }
}
