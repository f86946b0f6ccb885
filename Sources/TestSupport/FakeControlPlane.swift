internal import EnvoyAPI
package import Foundation
package import GRPCCore
internal import GRPCNIOTransportHTTP2
internal import SwiftProtobuf
internal import Synchronization

/// An ADS server standing in for istiod in tests (plaintext, 127.0.0.1): records every request of every
/// stream (state of the world and delta) with the stream's metadata, answers each request that opens a
/// subscription (empty response nonce) with version `v1` / nonce `n1` (delta: `d1`) for its type, and can end
/// every open stream with a status.
package final class FakeControlPlane: Sendable {
  package struct Recorded: Sendable {
    package var stream: Int
    package var delta: Bool
    package var typeURL: String
    package var nodeID: String
    package var versionInfo: String
    package var responseNonce: String
    package var resourceNames: [String]
  }

  final class StateBox: Sendable {
    let mutex = Mutex(State())
    func withLock<R>(_ body: (inout State) -> R) -> R { mutex.withLock { body(&$0) } }
  }

  struct State {
    var requests: [Recorded] = []
    var metadata: [Int: [String: String]] = [:]
    var nextStream = 0
    var closers: [Int: AsyncStream<RPCError>.Continuation] = [:]
    var reject: RPCError.Code?
    var responsePadding = 0
  }

  package let port: Int
  private let state = StateBox()
  private let server: GRPCServer<HTTP2ServerTransport.Posix>
  private let task: Task<Void, any Error>

  /// Starts on `port` (0: any free port).
  package init(port: Int = 0) async throws {
    let server = GRPCServer(
      transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext),
      services: [Service(state: state)])
    self.server = server
    task = Task { try await server.serve() }
    guard let address = try await server.listeningAddress?.ipv4 else {
      throw RPCError(code: .internalError, message: "fake control plane did not start")
    }
    self.port = address.port
  }

  package var requests: [Recorded] { state.withLock { $0.requests } }
  /// Each stream's request metadata (lower-cased names).
  package var metadata: [Int: [String: String]] { state.withLock { $0.metadata } }

  /// New streams fail at once with `code` (nil: served normally).
  package func rejectStreams(_ code: RPCError.Code?) { state.withLock { $0.reject = code } }

  /// Responses from now on carry one resource of `bytes` bytes (0: none), e.g. a push over a size limit.
  package func padResponses(_ bytes: Int) { state.withLock { $0.responsePadding = bytes } }

  /// Ends every open stream with `code`.
  package func endStreams(_ code: RPCError.Code, message: String = "closed by the fake control plane") {
    let closers = state.withLock { Array($0.closers.values) }
    for closer in closers { closer.yield(RPCError(code: code, message: message)) }
  }

  package func stop() async {
    server.beginGracefulShutdown()
    endStreams(.unavailable, message: "shutting down")
    _ = try? await task.value
  }

  private struct Service: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.ServiceProtocol {
    let state: StateBox

    /// Registers a stream; returns its id and the stream of close requests.
    func open(_ metadata: Metadata) -> (Int, AsyncStream<RPCError>) {
      let (closes, closer) = AsyncStream<RPCError>.makeStream()
      let id = state.withLock { state in
        state.nextStream += 1
        var values: [String: String] = [:]
        for (key, value) in metadata {
          if case .string(let text) = value { values[key.lowercased()] = text }
        }
        state.metadata[state.nextStream] = values
        state.closers[state.nextStream] = closer
        return state.nextStream
      }
      return (id, closes)
    }

    /// One resource of `bytes` zero bytes (none for 0).
    static func padding(_ bytes: Int, type: String) -> [Google_Protobuf_Any] {
      guard bytes > 0 else { return [] }
      var resource = Google_Protobuf_Any()
      resource.typeURL = type
      resource.value = Data(count: bytes)
      return [resource]
    }

    func close(_ id: Int) { _ = state.withLock { $0.closers.removeValue(forKey: id) } }

    /// Runs `body` until it ends or a close is requested (then the stream fails with that status).
    func serve(_ closes: AsyncStream<RPCError>, _ body: @escaping @Sendable () async throws -> Void)
      async throws
    {
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
          for await error in closes { throw error }
        }
        try await group.next()
        group.cancelAll()
      }
    }

    func streamAggregatedResources(
      request: StreamingServerRequest<Envoy_Service_Discovery_V3_DiscoveryRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Envoy_Service_Discovery_V3_DiscoveryResponse> {
      if let code = state.withLock({ $0.reject }) {
        throw RPCError(code: code, message: "rejected by the fake")
      }
      let (id, closes) = open(request.metadata)
      let state = self.state
      return StreamingServerResponse { writer in
        defer { close(id) }
        try await serve(closes) {
          for try await message in request.messages {
            state.withLock {
              $0.requests.append(
                Recorded(
                  stream: id, delta: false, typeURL: message.typeURL, nodeID: message.node.id,
                  versionInfo: message.versionInfo, responseNonce: message.responseNonce,
                  resourceNames: message.resourceNames))
            }
            if message.responseNonce.isEmpty {
              var response = Envoy_Service_Discovery_V3_DiscoveryResponse()
              response.typeURL = message.typeURL
              response.versionInfo = "v1"
              response.nonce = "n1"
              response.resources = Self.padding(state.withLock { $0.responsePadding }, type: message.typeURL)
              try await writer.write(response)
            }
          }
        }
        return [:]
      }
    }

    func deltaAggregatedResources(
      request: StreamingServerRequest<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest>,
      context: ServerContext
    ) async throws -> StreamingServerResponse<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse> {
      let (id, closes) = open(request.metadata)
      let state = self.state
      return StreamingServerResponse { writer in
        defer { close(id) }
        try await serve(closes) {
          for try await message in request.messages {
            state.withLock {
              $0.requests.append(
                Recorded(
                  stream: id, delta: true, typeURL: message.typeURL, nodeID: message.node.id, versionInfo: "",
                  responseNonce: message.responseNonce, resourceNames: message.resourceNamesSubscribe))
            }
            if message.responseNonce.isEmpty {
              var response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
              response.typeURL = message.typeURL
              response.systemVersionInfo = "v1"
              response.nonce = "d1"
              let padding = Self.padding(state.withLock { $0.responsePadding }, type: message.typeURL)
              response.resources = padding.map { any in .with { $0.resource = any } }
              try await writer.write(response)
            }
          }
        }
        return [:]
      }
    }
  }
}
