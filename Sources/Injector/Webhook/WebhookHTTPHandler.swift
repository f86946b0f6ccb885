internal import NIOCore
internal import NIOHTTP1

/// Turns HTTP/1.1 request parts into whole ``WebhookRequest``s, answers each through the ``WebhookRouter``
/// and writes the ``WebhookResponse``.
///
/// Invariant: exactly one response per request, in order (`HTTPServerPipelineHandler` sits in front and
/// holds pipelined requests back); no request body larger than the limit is ever buffered — the
/// connection is answered 413 and closed instead.
final class WebhookHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private var machine: StateMachine
  private let router: WebhookRouter

  init(router: WebhookRouter, maxBodyBytes: Int) {
    self.router = router
    self.machine = StateMachine(maxBodyBytes: maxBodyBytes)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let action: StateMachine.Action
    switch unwrapInboundIn(data) {
    case .head(let head): action = machine.head(head)
    case .body(let chunk): action = machine.body(chunk)
    case .end: action = machine.end()
    }
    switch action {
    case .none:
      break
    case .dispatch(let request, let keepAlive):
      write(router.respond(to: request), keepAlive: keepAlive, context: context)
    case .refuse(let status, let message):
      write(.text(status, message), keepAlive: false, context: context)
    }
  }

  private func write(_ response: WebhookResponse, keepAlive: Bool, context: ChannelHandlerContext) {
    var headers = HTTPHeaders()
    headers.add(name: "content-type", value: response.contentType)
    headers.add(name: "content-length", value: String(response.body.utf8.count))
    if !keepAlive { headers.add(name: "connection", value: "close") }
    let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
    context.write(wrapOutboundOut(.head(head)), promise: nil)
    context.write(
      wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))),
      promise: nil)
    if keepAlive {
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    } else {
      let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
      context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
        loopBoundContext.value.close(promise: nil)
      }
    }
  }
}
