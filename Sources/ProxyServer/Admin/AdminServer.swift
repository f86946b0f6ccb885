package import EnvoyAPI
package import Logging
package import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// The admin listener (`admin.address`, 127.0.0.1:15000 in a sidecar): plain HTTP/1.1 with NIOHTTP1 —
/// speed does not matter here — handing each complete request to `AdminAPI`.
struct AdminServer: Sendable {
  let api: AdminAPI
  let logger: Logger

  /// Binds the admin address; nil when the bootstrap has none (validation-only configs).
  func start(bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap, group: any EventLoopGroup) async throws -> (
    any Channel
  )? {
    guard bootstrap.hasAdmin, bootstrap.admin.hasAddress else { return nil }
    let address: SocketAddress
    switch bootstrap.admin.address.address {
    case .socketAddress(let socket)?:
      address = try SocketAddress(ipAddress: socket.address, port: Int(socket.portValue))
    case .pipe(let pipe)?:
      unlink(pipe.path)
      address = try SocketAddress(unixDomainSocketPath: pipe.path)
    default:
      return nil
    }
    let api = self.api
    do {
      let channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelInitializer { channel in
          // Out of descriptors: pause accepting for a moment instead of retrying accept(2) at once.
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(pause: .milliseconds(500)))
          }
        }
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(api: api))
          }
        }
        .bind(to: address).get()
      logger.info("admin address: \(channel.localAddress?.envoyDescription ?? "?")")
      return channel
    } catch {
      throw AdminBindError(address: address.envoyDescription, reason: "\(error)")
    }
  }
}

struct AdminBindError: Error, CustomStringConvertible {
  var address: String
  var reason: String
  var description: String { "admin: cannot bind to \(address): \(reason)" }
}

/// Collects one request (head and body) and writes `AdminAPI`'s answer; keep-alive as the client asks.
final class AdminHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let api: AdminAPI
  private var head: HTTPRequestHead?
  private var body = ByteBuffer()

  init(api: AdminAPI) { self.api = api }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      self.head = head
      body.clear()
    case .body(var chunk):
      if body.readableBytes < 1 << 20 { body.writeBuffer(&chunk) }
    case .end:
      guard let head else { return }
      self.head = nil
      let request = AdminRequest(method: head.method.rawValue, uri: head.uri, body: String(buffer: body))
      let response = api.handle(request)
      var headers = HTTPHeaders()
      headers.add(name: "content-type", value: response.contentType)
      headers.add(name: "content-length", value: String(response.body.utf8.count))
      headers.add(name: "cache-control", value: "no-cache, max-age=0")
      headers.add(name: "x-content-type-options", value: "nosniff")
      let keepAlive = head.isKeepAlive
      if !keepAlive { headers.add(name: "connection", value: "close") }
      context.write(
        wrapOutboundOut(
          .head(
            HTTPResponseHead(
              version: head.version, status: .init(statusCode: response.status), headers: headers))),
        promise: nil)
      context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
      let done = context.eventLoop.makePromise(of: Void.self)
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
      if !keepAlive {
        done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
      }
      response.afterSend?()
    }
  }
}
