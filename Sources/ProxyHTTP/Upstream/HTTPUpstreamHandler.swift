internal import NIOCore
internal import ProxyCore

/// An upstream HTTP/1.1 connection on a NIO channel: the transport of an `HTTPUpstreamConnection` (the NIO
/// data path, until every listener runs on the reactor).
final class HTTPUpstreamHandler: ChannelDuplexHandler, HTTPUpstreamIO {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let core: HTTPUpstreamConnection
  private var context: ChannelHandlerContext?
  private var readPending = false
  private var idleTimer: Scheduled<Void>?

  init(core: HTTPUpstreamConnection) { self.core = core }

  /// Connects `core` on `eventLoop` and reports the outcome to it.
  static func connect(_ core: HTTPUpstreamConnection, on eventLoop: any EventLoop) {
    UpstreamConnector.connect(to: core.host, cluster: core.cluster, on: eventLoop)
      .assumeIsolated()
      .whenComplete { result in
        switch result {
        case .success(let channel):
          do {
            try channel.pipeline.syncOperations.addHandler(HTTPUpstreamHandler(core: core))
          } catch {
            channel.close(promise: nil)
            core.connectFailed(reason: "\(error)", timedOut: false)
            return
          }
          core.didConnect()
        case .failure(let error):
          let timedOut: Bool = if case ChannelError.connectTimeout = error { true } else { false }
          core.connectFailed(reason: "\(error)", timedOut: timedOut)
        }
      }
  }

  // MARK: HTTPUpstreamIO

  var isWritable: Bool { context?.channel.isWritable ?? false }
  var localAddress: SocketAddress? { context?.channel.localAddress }

  func write(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }

  func flush() { context?.flush() }

  func close() {
    idleTimer?.cancel()
    idleTimer = nil
    context?.close(promise: nil)
  }

  func shutdownOutputAfterPendingWrites() {
    guard let context else { return }
    let written = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
    written.futureResult.assumeIsolated().whenComplete { _ in
      context.close(mode: .output, promise: nil)
    }
  }

  func updateReading() {
    guard readPending, let context, core.shouldRead() else { return }
    readPending = false
    context.read()
  }

  func scheduleIdleCheck(at deadline: NIODeadline) {
    guard let context, idleTimer == nil else { return }
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
      bound.value.idleTimer = nil
      bound.value.core.idleCheck()
    }
  }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    core.bind(io: self)
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    core.read(&bytes)
  }

  func channelReadComplete(context: ChannelHandlerContext) { core.readComplete() }

  func read(context: ChannelHandlerContext) {
    if core.shouldRead() {
      context.read()
    } else {
      readPending = true
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { core.writabilityChanged() }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard case .inputClosed? = event as? ChannelEvent else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    core.inputClosed()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  func channelInactive(context: ChannelHandlerContext) {
    idleTimer?.cancel()
    idleTimer = nil
    core.closed()
    context.fireChannelInactive()
  }
}
