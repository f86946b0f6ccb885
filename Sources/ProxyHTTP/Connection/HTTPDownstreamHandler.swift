internal import NIOCore
internal import ProxyCore

/// A downstream HTTP/1.1 connection on a NIO channel: the transport of an `HTTPConnectionManager` (the NIO
/// data path, until every listener runs on the reactor).
final class HTTPDownstreamHandler: ChannelDuplexHandler, HTTPDownstreamIO {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let manager: HTTPConnectionManager
  private var context: ChannelHandlerContext?
  private var initialBytes: ByteBuffer?
  private var readPending = false
  private var timer: Scheduled<Void>?

  init(manager: HTTPConnectionManager, initialBytes: ByteBuffer?) {
    self.manager = manager
    self.initialBytes = initialBytes
  }

  // MARK: HTTPDownstreamIO

  var isWritable: Bool { context?.channel.isWritable ?? false }

  func write(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }

  func flush() { context?.flush() }

  func closeAfterPendingWrites() { context?.closeAfterPendingWrites() }

  func close() { context?.close(promise: nil) }

  func shutdownOutputAfterPendingWrites() {
    guard let context else { return }
    let written = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
    written.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: .output, promise: nil) }
  }

  func updateReading() {
    guard readPending, let context else { return }
    readPending = false
    read(context: context)
  }

  func scheduleTimer(at deadline: NIODeadline) {
    guard let context else { return }
    timer?.cancel()
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    timer = context.eventLoop.scheduleTask(deadline: deadline) {
      bound.value.timer = nil
      bound.value.manager.timerFired()
    }
  }

  func cancelTimer() {
    timer?.cancel()
    timer = nil
  }

  func connect(_ upstream: HTTPUpstreamConnection) {
    guard let context else { return }
    HTTPUpstreamHandler.connect(upstream, on: context.eventLoop)
  }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    let bytes = initialBytes
    initialBytes = nil
    if bytes == nil {
      manager.start(io: self, initialBytes: nil)
    } else {
      // Bytes the listener filters read are handled as if they had just arrived.
      context.eventLoop.assumeIsolated().execute {
        guard self.context != nil else { return }
        self.manager.start(io: self, initialBytes: bytes)
      }
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    manager.connectionClosed()
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    manager.read(&bytes)
  }

  func channelReadComplete(context: ChannelHandlerContext) { manager.readComplete() }

  func read(context: ChannelHandlerContext) {
    if manager.shouldRead() {
      context.read()
    } else {
      readPending = true
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { manager.becameWritable() }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard case .inputClosed? = event as? ChannelEvent else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    manager.inputClosed()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  func channelInactive(context: ChannelHandlerContext) {
    manager.connectionClosed()
    context.fireChannelInactive()
  }
}
