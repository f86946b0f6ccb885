internal import EnvoyAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
package import Logging
internal import ServiceLifecycle
internal import Synchronization

/// An ADS client (delta or state of the world) over grpc-swift: one stream to the control plane at a time,
/// every subscription on it, validated updates handed to an ``ADSSubscriber`` one at a time and ACKed or
/// NACKed with its verdict. The protocol itself is ``ADSStreamState``; this type does the I/O.
///
/// Failure behaviour: a stream that fails or ends (connection refused or lost, any status from the server,
/// even OK) is opened again after a backoff (``ADSClientConfiguration/Backoff``, reset once a stream has
/// delivered a response), on a new connection, resending every subscription with the versions held. It
/// runs until graceful shutdown or cancellation.
package final class ADSClient: Service, Sendable {
  private struct Shared: Sendable {
    var machine: ADSStreamState
    /// The open stream's request queue.
    var outbound: AsyncStream<ADSRequest>.Continuation?

    func send(_ requests: [ADSRequest]) {
      guard let outbound else { return }
      for request in requests { outbound.yield(request) }
    }
  }

  package let configuration: ADSClientConfiguration
  private let subscriber: any ADSSubscriber
  private let logger: Logger
  private let shared: Mutex<Shared>

  package init(configuration: ADSClientConfiguration, subscriber: any ADSSubscriber, logger: Logger) {
    self.configuration = configuration
    self.subscriber = subscriber
    var logger = logger
    logger[metadataKey: "proxy.xds.api"] = "\(configuration.api == .delta ? "delta" : "sotw")"
    self.logger = logger
    shared = Mutex(
      Shared(
        machine: ADSStreamState(
          api: configuration.api, node: configuration.node,
          setNodeOnFirstMessageOnly: configuration.setNodeOnFirstMessageOnly)))
  }

  /// Sets the interest in `typeURL` (wildcard, or names; empty names: none). Thread-safe and non-blocking:
  /// the request is queued on the open stream at once, or, while the subscriber applies an update, right
  /// before that update's ACK or NACK; it is remembered for later streams.
  package func setSubscription(_ typeURL: String, _ subscription: XDSSubscription) {
    shared.withLock { shared in
      let requests = shared.machine.setSubscription(typeURL, subscription)
      shared.send(requests)
    }
  }

  package func run() async throws {
    await cancelWhenGracefulShutdown { await self.runStreams() }
    logger.info("xDS client stopped")
  }

  /// Streams, one after the other, with the backoff between them, until cancelled.
  private func runStreams() async {
    var delays = ADSClientConfiguration.Backoff.Delays(configuration.backoff)
    while !Task.isCancelled {
      let delivered = await runStream()
      if Task.isCancelled { break }
      if delivered { delays.reset() }
      let delay = delays.next()
      logger.info("xDS stream will be opened again", metadata: ["proxy.xds.backoff": "\(delay)"])
      do {
        try await Task.sleep(for: delay)
      } catch {
        break
      }
    }
  }

  /// One stream, from opening to its end. Returns whether it delivered a response.
  private func runStream() async -> Bool {
    let (requests, outbound) = AsyncStream<ADSRequest>.makeStream()
    shared.withLock { shared in
      shared.outbound = outbound
      let requests = shared.machine.streamOpened()
      shared.send(requests)
    }
    let progress = StreamProgress()
    let target = configuration.target.description
    logger.debug("xDS stream opening", metadata: ["proxy.xds.target": "\(target)"])
    var reason: String
    do {
      let transport = try makeTransport()
      try await withGRPCClient(transport: transport) { client in
        try await self.stream(on: client, requests: requests, progress: progress)
      }
      reason = "the control plane ended the stream (OK)"
    } catch let error as RPCError {
      reason = "\(error.code): \(error.message)"
      if error.code == .internalError, error.message.hasPrefix("Failed to decode") {
        reason += " (a response over \(configuration.maxReceiveMessageBytes) bytes, or malformed)"
      }
    } catch is CancellationError {
      reason = "cancelled"
    } catch {
      reason = "\(error)"
    }
    shared.withLock { shared in
      shared.machine.streamClosed()
      shared.outbound?.finish()
      shared.outbound = nil
    }
    let connected = progress.connected
    logger.log(
      level: Task.isCancelled ? .info : .warning, "xDS stream closed",
      metadata: ["proxy.xds.target": "\(target)", "proxy.xds.reason": "\(reason)"])
    if connected { await subscriber.connectionStateChanged(connected: false) }
    return progress.delivered
  }

  /// Whether the stream got its response headers, and a response.
  private final class StreamProgress: Sendable {
    private let state = Mutex((connected: false, delivered: false))
    var connected: Bool { state.withLock { $0.connected } }
    var delivered: Bool { state.withLock { $0.delivered } }
    func markConnected() -> Bool {
      state.withLock { state in
        defer { state.connected = true }
        return !state.connected
      }
    }
    func markDelivered() { state.withLock { $0.delivered = true } }
  }

  private func stream(
    on client: GRPCClient<HTTP2ClientTransport.Posix>, requests: AsyncStream<ADSRequest>,
    progress: StreamProgress
  ) async throws {
    let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
    var options = CallOptions.defaults
    // A failed connection ends the attempt; this client's own backoff paces the next one.
    options.waitForReady = false
    // grpc-swift-nio-transport 2.x applies `maxRequestMessageBytes` as the limit on the messages the client
    // receives; both are set so the intent holds if that changes.
    options.maxRequestMessageBytes = configuration.maxReceiveMessageBytes
    options.maxResponseMessageBytes = configuration.maxReceiveMessageBytes
    switch configuration.api {
    case .stateOfTheWorld:
      try await ads.streamAggregatedResources(options: options) { writer in
        for await request in requests {
          if case .stateOfTheWorld(let message) = request { try await writer.write(message) }
        }
      } onResponse: { response in
        try await self.opened(response.accepted, progress: progress)
        for try await message in response.messages {
          progress.markDelivered()
          await self.handle(self.shared.withLock { $0.machine.received(message) })
        }
      }
    case .delta:
      try await ads.deltaAggregatedResources(options: options) { writer in
        for await request in requests {
          if case .delta(let message) = request { try await writer.write(message) }
        }
      } onResponse: { response in
        try await self.opened(response.accepted, progress: progress)
        for try await message in response.messages {
          progress.markDelivered()
          await self.handle(self.shared.withLock { $0.machine.received(message) })
        }
      }
    }
  }

  /// The stream's response headers arrived (or the stream was refused: throws).
  private func opened<Contents>(_ accepted: Result<Contents, RPCError>, progress: StreamProgress) async throws
  {
    if case .failure(let error) = accepted { throw error }
    guard progress.markConnected() else { return }
    logger.info("xDS stream opened", metadata: ["proxy.xds.target": "\(configuration.target.description)"])
    await subscriber.connectionStateChanged(connected: true)
  }

  /// Applies, ACKs or NACKs one response.
  private func handle(_ action: ADSStreamState.ResponseAction) async {
    switch action {
    case .reject(let reason, let requests):
      logger.warning(
        "xDS response rejected (NACK)",
        metadata: ["proxy.xds.type": "\(requests.first?.typeURL ?? "")", "proxy.xds.error": "\(reason)"])
      shared.withLock { $0.send(requests) }
    case .apply(let update):
      let nack = await subscriber.apply(update)
      if let nack {
        logger.warning(
          "xDS update rejected (NACK)",
          metadata: [
            "proxy.xds.type": "\(update.typeURL)", "proxy.xds.version": "\(update.versionInfo)",
            "proxy.xds.error": "\(nack)",
          ])
      } else {
        logger.debug(
          "xDS update accepted",
          metadata: [
            "proxy.xds.type": "\(update.typeURL)", "proxy.xds.version": "\(update.versionInfo)",
            "proxy.xds.resources": "\(update.resources.count)",
            "proxy.xds.removed": "\(update.removed.count)",
          ])
      }
      shared.withLock { shared in
        let requests = shared.machine.finishApply(nack: nack)
        shared.send(requests)
      }
    }
  }

  /// A fresh transport for one stream attempt.
  private func makeTransport() throws -> HTTP2ClientTransport.Posix {
    var config = HTTP2ClientTransport.Posix.Config.defaults
    let backoff = configuration.backoff
    config.backoff = .init(
      initial: backoff.initial, max: backoff.max, multiplier: backoff.multiplier, jitter: backoff.jitter)
    switch configuration.target {
    case .unix(let path):
      return try HTTP2ClientTransport.Posix(
        target: .unixDomainSocket(path: path), transportSecurity: .plaintext, config: config)
    case .tcp(let host, let port, let tls):
      guard let tls else {
        return try HTTP2ClientTransport.Posix(
          target: .dns(host: host, port: port), transportSecurity: .plaintext, config: config)
      }
      if let serverName = tls.serverName { config.http2.authority = serverName }
      let security = HTTP2ClientTransport.Posix.TransportSecurity.tls { settings in
        if let roots = tls.rootCertificatePath {
          settings.trustRoots = .certificates([.file(path: roots, format: .pem)])
        }
        if let chain = tls.certificateChainPath, let key = tls.privateKeyPath {
          settings.certificateChain = [.file(path: chain, format: .pem)]
          settings.privateKey = .file(path: key, format: .pem)
        }
      }
      return try HTTP2ClientTransport.Posix(
        target: .dns(host: host, port: port), transportSecurity: security, config: config)
    }
  }
}

extension ADSClientConfiguration.Target: CustomStringConvertible {
  package var description: String {
    switch self {
    case .unix(let path): "unix:\(path)"
    case .tcp(let host, let port, let tls): "\(tls == nil ? "tcp" : "tls")://\(host):\(port)"
    }
  }
}
