internal import EnvoyAPI
internal import NIOCore
internal import NIOHTTP1
internal import NIOHTTP2
internal import NIOPosix
internal import SwiftProtobuf

/// The gRPC health app probe (`grpc.health.v1.Health/Check`), as Istio's prober runs it: plaintext HTTP/2,
/// the probe's service name, SERVING passes, anything else fails.
///
/// A single unary call over swift-nio-http2 rather than a grpc-swift client: the probe must leave from the
/// passthrough source address (127.0.0.6) so the inbound interception lets it through, and grpc-swift's NIO
/// transport cannot bind a client's local address.
enum GRPCHealthProbe {
  /// The outcome: `nil` when the service is SERVING, otherwise why not.
  static func check(
    host: String, port: Int, service: String, sourceAddress: String?, timeout: Duration,
    group: any EventLoopGroup
  ) async -> String? {
    do {
      return try await withThrowingTaskGroup(of: String?.self) { tasks in
        tasks.addTask {
          try await call(host: host, port: port, service: service, sourceAddress: sourceAddress, timeout: timeout, group: group)
        }
        tasks.addTask {
          try await Task.sleep(for: timeout)
          return "gRPC health check of \(host):\(port) timed out after \(timeout)"
        }
        defer { tasks.cancelAll() }
        return try await tasks.next()!
      }
    } catch {
      return "gRPC health check of \(host):\(port) failed: \(error)"
    }
  }

  private static func call(
    host: String, port: Int, service: String, sourceAddress: String?, timeout: Duration,
    group: any EventLoopGroup
  ) async throws -> String? {
    var bootstrap = ClientBootstrap(group: group).connectTimeout(TimeAmount(timeout))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: .init(), streamConfiguration: .init(),
            inboundStreamInitializer: { $0.close() })
        }
      }
    if let sourceAddress {
      bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0))
    }
    let channel = try await bootstrap.connect(host: host, port: port).get()
    defer { channel.close(promise: Optional<EventLoopPromise<Void>>.none) }
    let response = channel.eventLoop.makePromise(of: UnaryResponse.self)
    let streamChannel = try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<any Channel> in
      do {
        let multiplexer = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
        return multiplexer.createStreamChannel { stream in
          stream.eventLoop.makeCompletedFuture {
            try stream.pipeline.syncOperations.addHandlers([
              HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http), UnaryResponseCollector(promise: response),
            ])
          }
        }
      } catch {
        return channel.eventLoop.makeFailedFuture(error)
      }
    }.get()

    var request = Grpc_Health_V1_HealthCheckRequest()
    request.service = service
    let message: [UInt8] = try request.serializedBytes()
    var body = ByteBuffer()
    body.writeInteger(UInt8(0))  // not compressed
    body.writeInteger(UInt32(message.count))
    body.writeBytes(message)
    var head = HTTPRequestHead(version: .http2, method: .POST, uri: "/grpc.health.v1.Health/Check")
    head.headers.add(name: "host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
    head.headers.add(name: "content-type", value: "application/grpc")
    head.headers.add(name: "te", value: "trailers")
    head.headers.add(name: "user-agent", value: "pilotfish-agent-prober")
    streamChannel.write(HTTPClientRequestPart.head(head), promise: Optional<EventLoopPromise<Void>>.none)
    streamChannel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: Optional<EventLoopPromise<Void>>.none)
    streamChannel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: Optional<EventLoopPromise<Void>>.none)
    return try await response.futureResult.get().verdict
  }

  /// What came back on the stream.
  struct UnaryResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: ByteBuffer
    var trailers: [(String, String)]

    /// `nil` for SERVING, otherwise the reason.
    var verdict: String? {
      guard status == 200 else { return "HTTP status \(status) instead of a gRPC response" }
      let all = headers + trailers
      let grpcStatus = all.first { $0.0.lowercased() == "grpc-status" }?.1
      guard let grpcStatus else { return "no grpc-status in the response" }
      guard grpcStatus == "0" else {
        let message = all.first { $0.0.lowercased() == "grpc-message" }?.1 ?? ""
        return "gRPC status \(grpcStatus)\(message.isEmpty ? "" : " (\(message))")"
      }
      var body = self.body
      guard let compressed = body.readInteger(as: UInt8.self), compressed == 0,
        let length = body.readInteger(as: UInt32.self), let bytes = body.readBytes(length: Int(length)),
        let reply = try? Grpc_Health_V1_HealthCheckResponse(serializedBytes: bytes)
      else {
        return "malformed health check response"
      }
      switch reply.status {
      case .serving: return nil
      case .notServing: return "service status NOT_SERVING"
      case .serviceUnknown: return "service status SERVICE_UNKNOWN"
      case .unknown: return "service status UNKNOWN"
      case .UNRECOGNIZED(let value): return "service status \(value)"
      }
    }
  }

  /// Gathers the HTTP/1-shaped parts of the response stream and completes the promise at its end.
  final class UnaryResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<UnaryResponse>
    private var response = UnaryResponse(status: 0, headers: [], body: ByteBuffer(), trailers: [])
    private var completed = false

    init(promise: EventLoopPromise<UnaryResponse>) {
      self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let head):
        response.status = Int(head.status.code)
        response.headers = head.headers.map { ($0.name, $0.value) }
      case .body(var chunk):
        response.body.writeBuffer(&chunk)
      case .end(let trailers):
        response.trailers = trailers.map { $0.map { ($0.name, $0.value) } } ?? []
        complete(.success(response))
      }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      complete(.failure(error))
      context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      complete(.failure(ChannelError.eof))
    }

    private func complete(_ result: Result<UnaryResponse, any Error>) {
      guard !completed else { return }
      completed = true
      promise.completeWith(result)
    }
  }
}
