internal import EnvoyAPI
internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
package import Logging
internal import ServiceLifecycle

#if canImport(Glibc)
  internal import Glibc
#endif

/// The agent's xDS proxy (Istio's `xds_proxy.go`): the proxy's bootstrap points its `xds-grpc` cluster at
/// `./etc/istio/proxy/XDS`; every ADS stream opened there (state of the world or delta) is relayed, message
/// by message and unchanged, over one upstream stream of the same kind to istiod, with the pod's token and
/// cluster ID. The proxy never needs istiod's address, root certificate or token itself.
///
/// Failure behaviour: an upstream that cannot be reached is retried with gRPC's connection backoff while the
/// downstream's requests wait (the RPC waits for a ready connection); an upstream stream that breaks ends
/// the downstream stream with the upstream's status (UNAVAILABLE for a lost connection), and the proxy
/// re-subscribes with its own state — the same effect as Istio's agent. A downstream that goes away cancels
/// its upstream.
///
/// Bounds: a request from the proxy larger than ``Limits/maxRequestBytes`` or a response from istiod larger
/// than ``Limits/maxResponseBytes`` ends that stream with RESOURCE_EXHAUSTED (the agent and other streams
/// carry on); at most ``Limits/maxBufferedRequests`` requests wait for a slow upstream per stream, beyond
/// which the stream ends with RESOURCE_EXHAUSTED instead of buffering without limit.
package struct XDSProxy: Service {
  /// Message-size and buffering limits of the relay.
  package struct Limits: Sendable, Equatable {
    /// Requests (subscriptions, ACKs) from the proxy: 4 MiB, istiod's own default receive limit
    /// (ISTIO_GPRC_MAXRECVMSGSIZE), so nothing istiod would refuse is relayed.
    package var maxRequestBytes = 4 * 1024 * 1024
    /// Pushes from istiod: 64 MiB. Istio's agent accepts up to 2 GiB (math.MaxInt32) here; a full CDS/EDS
    /// push of a large mesh is tens of MiB, so 4 MiB would cut real pushes while 64 MiB still bounds memory.
    package var maxResponseBytes = 64 * 1024 * 1024
    /// Requests read from the proxy but not yet written upstream, per stream.
    package var maxBufferedRequests = 64

    package init() {}
  }

  package var socketPath: String
  package var owner: (uid: UInt32, gid: UInt32)?
  package var upstream: IstiodConnection
  package var limits: Limits
  private let logger: Logger

  package init(
    socketPath: String, owner: (uid: UInt32, gid: UInt32)?, upstream: IstiodConnection,
    limits: Limits = Limits(), logger: Logger
  ) {
    self.socketPath = socketPath
    self.owner = owner
    self.upstream = upstream
    self.limits = limits
    self.logger = logger
  }

  package func run() async throws {
    guard
      let descriptor = try UnixSocketListener.listen(
        at: socketPath, owner: owner, respectLiveServer: false, role: "xDS proxy", logger: logger)
    else {
      throw AgentError(.identity, "\(socketPath): the xDS proxy socket could not be created")
    }
    var config = HTTP2ServerTransport.Posix.Config.defaults
    config.rpc.maxRequestPayloadSize = limits.maxRequestBytes
    let server = GRPCServer(
      transport: .http2NIOPosix(
        listeningSocketDescriptor: Int(descriptor), transportSecurity: .plaintext, config: config),
      services: [AggregatedDiscoveryRelay(upstream: upstream, limits: limits, logger: logger)])
    logger.info(
      "xDS proxy listening",
      metadata: [
        "agent.xds.socket": "\(socketPath)", "agent.xds.upstream": "\(upstream.host):\(upstream.port)",
      ])
    defer { unlink(socketPath) }
    try await withGracefulShutdownHandler {
      try await server.serve()
    } onGracefulShutdown: {
      server.beginGracefulShutdown()
    }
  }
}

/// Which half of a relayed stream finished.
enum RelayPart: Sendable { case downstream, relay }

/// `envoy.service.discovery.v3.AggregatedDiscoveryService`, answered by relaying to istiod.
struct AggregatedDiscoveryRelay: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
  let upstream: IstiodConnection
  let limits: XDSProxy.Limits
  let logger: Logger

  func streamAggregatedResources(
    request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DiscoveryRequest, any Error>,
    response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
    context: ServerContext
  ) async throws {
    try await relay(kind: "sotw", downstream: request) { client, metadata, options, requests in
      try await Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
        .streamAggregatedResources(metadata: metadata, options: options) { writer in
          for try await message in requests { try await writer.write(message) }
        } onResponse: { upstream in
          try await forward(upstream.messages, to: response)
        }
    }
  }

  func deltaAggregatedResources(
    request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
    response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>,
    context: ServerContext
  ) async throws {
    try await relay(kind: "delta", downstream: request) { client, metadata, options, requests in
      try await Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
        .deltaAggregatedResources(metadata: metadata, options: options) { writer in
          for try await message in requests { try await writer.write(message) }
        } onResponse: { upstream in
          try await forward(upstream.messages, to: response)
        }
    }
  }

  /// Writes istiod's messages to the proxy. grpc-swift's transport ends a stream whose message is over the
  /// receive limit (``XDSProxy/Limits/maxResponseBytes``, checked on the length prefix, before buffering) with
  /// INTERNAL "Failed to decode message"; the proxy is told RESOURCE_EXHAUSTED and why instead.
  private func forward<Message: Sendable>(
    _ messages: RPCAsyncSequence<Message, any Error>, to response: RPCWriter<Message>
  ) async throws {
    do {
      for try await message in messages { try await response.write(message) }
    } catch let error as RPCError
      where error.code == .internalError && error.message.hasPrefix("Failed to decode")
    {
      throw RPCError(
        code: .resourceExhausted,
        message: "a message from istiod could not be read: larger than the relay's limit of "
          + "\(limits.maxResponseBytes) bytes, or malformed (\(error.message))")
    }
  }

  /// Runs `stream` on a fresh client (one upstream connection per downstream stream) and maps failures to
  /// the status the proxy sees.
  private func relay<Request: Sendable>(
    kind: String, downstream: RPCAsyncSequence<Request, any Error>,
    _ stream:
      @escaping @Sendable (
        GRPCClient<HTTP2ClientTransport.Posix>, Metadata, CallOptions, AsyncThrowingStream<Request, any Error>
      ) async throws -> Void
  ) async throws {
    let metadata: Metadata
    let transport: HTTP2ClientTransport.Posix
    do {
      metadata = try upstream.metadata()
      transport = try upstream.transport()
    } catch {
      logger.error("xDS proxy cannot reach istiod", metadata: ["error": "\(error)"])
      throw RPCError(code: .unavailable, message: "\(error)")
    }
    var options = CallOptions.defaults
    options.waitForReady = true
    // grpc-swift-nio-transport 2.x applies `maxRequestMessageBytes` as the limit on the messages the client
    // *receives* (its stream handler's decoder); both are set so the intent holds if that changes.
    options.maxRequestMessageBytes = limits.maxResponseBytes
    options.maxResponseMessageBytes = limits.maxResponseBytes
    let target = "\(upstream.host):\(upstream.port)"
    logger.info(
      "xDS stream opened; relaying",
      metadata: ["agent.xds.kind": "\(kind)", "agent.xds.upstream": "\(target)"])
    // The proxy's requests are read by a task of this handler and handed over through a stream, so the
    // server-side request sequence is never consumed after the handler has returned.
    let (requests, sink) = AsyncThrowingStream<Request, any Error>.makeStream(
      bufferingPolicy: .bufferingOldest(limits.maxBufferedRequests))
    let maxBuffered = limits.maxBufferedRequests
    do {
      try await withThrowingTaskGroup(of: RelayPart.self) { group in
        group.addTask {
          var overflow: RPCError?
          do {
            for try await message in downstream {
              if case .dropped = sink.yield(message) {
                overflow = RPCError(
                  code: .resourceExhausted,
                  message: "more than \(maxBuffered) requests are waiting for istiod on this stream")
                break
              }
            }
            sink.finish(throwing: overflow)
          } catch {
            sink.finish(throwing: error)
          }
          // Thrown as well: the relay half reads the buffer only once istiod has accepted the stream, so while
          // istiod is away the stream would otherwise hang instead of ending.
          if let overflow { throw overflow }
          return .downstream
        }
        group.addTask { [options] in
          try await withGRPCClient(transport: transport) { client in
            try await stream(client, metadata, options, requests)
          }
          return .relay
        }
        defer { group.cancelAll() }
        while let finished = try await group.next(), finished != .relay {}
      }
      logger.info("xDS stream closed", metadata: ["agent.xds.kind": "\(kind)"])
    } catch let error as RPCError {
      logger.warning(
        "xDS stream ended",
        metadata: ["agent.xds.kind": "\(kind)", "error": "\(error.code): \(error.message)"])
      // Code and message only: the upstream's trailers (`:status`, `content-type` in a trailers-only
      // response) must not be replayed as this stream's trailers.
      throw RPCError(code: error.code, message: error.message)
    } catch is CancellationError {
      logger.info("xDS stream cancelled by the proxy", metadata: ["agent.xds.kind": "\(kind)"])
    } catch {
      logger.warning("xDS stream failed", metadata: ["agent.xds.kind": "\(kind)", "error": "\(error)"])
      throw RPCError(code: .unavailable, message: "upstream \(target): \(error)")
    }
  }
}
