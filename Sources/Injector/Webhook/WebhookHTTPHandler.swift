internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix

/// Turns HTTP/1.1 request parts into whole ``WebhookRequest``s, answers each through the ``WebhookRouter``
/// on a thread-pool thread (a review parses and mutates a whole pod: never on the event loop) and writes the
/// ``WebhookResponse``.
///
/// Invariants: exactly one response per request, in order (`HTTPServerPipelineHandler` sits in front and
/// holds pipelined requests back); no request body larger than the limit is ever buffered — the
/// connection is answered 413 and closed instead; a connection is closed when a deadline of
/// ``WebhookServer/Limits`` passes: no complete request head within `requestHeadTimeout` of opening
/// (slowloris, TLS handshake included), no complete request within `requestTimeout` of its head (a trickled
/// body), no next request within `idleTimeout` of the previous answer.
final class WebhookHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private var machine: StateMachine
  private let router: WebhookRouter
  private let limits: WebhookServer.Limits
  private let pool: NIOThreadPool
  private var deadline: Scheduled<Void>?

  init(
    router: WebhookRouter, maxBodyBytes: Int, limits: WebhookServer.Limits = .init(),
    pool: NIOThreadPool = .singleton
  ) {
    self.router = router
    self.machine = StateMachine(maxBodyBytes: maxBodyBytes)
    self.limits = limits
    self.pool = pool
  }

  func handlerAdded(context: ChannelHandlerContext) {
    arm(limits.requestHeadTimeout, context: context)
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    deadline?.cancel()
    deadline = nil
  }

  /// Closes the connection after `timeout` unless re-armed or disarmed first.
  private func arm(_ timeout: Duration?, context: ChannelHandlerContext) {
    deadline?.cancel()
    deadline = nil
    guard let timeout else { return }
    let channel = context.channel
    deadline = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) { channel.close(promise: nil) }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let action: StateMachine.Action
    let part = unwrapInboundIn(data)
    switch part {
    case .head(let head):
      action = machine.head(head)
      arm(limits.requestTimeout, context: context)
    case .body(let chunk): action = machine.body(chunk)
    case .end: action = machine.end()
    }
    switch action {
    case .none:
      break
    case .dispatch(let request, let keepAlive):
      arm(nil, context: context)
      let router = self.router
      let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
      pool.runIfActive(eventLoop: context.eventLoop) { router.respond(to: request) }.whenComplete { result in
        let (handler, context) = bound.value
        switch result {
        case .success(let response): handler.write(response, keepAlive: keepAlive, context: context)
        case .failure:
          handler.write(.text(.serviceUnavailable, "the webhook is shutting down"), keepAlive: false, context: context)
        }
      }
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
      arm(limits.idleTimeout, context: context)
    } else {
      let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
      context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
        loopBoundContext.value.close(promise: nil)
      }
    }
  }
}
