internal import NIOCore

/// The upstream half of a tcp_proxy connection: forwards what the upstream sends to the downstream half,
/// reads only while the downstream is writable, and reports FIN and close to the downstream half, which
/// owns the connection's state.
final class TCPProxyUpstreamHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let downstream: TCPProxyDownstreamHandler
  private var context: ChannelHandlerContext?
  private var readPending = false
  private var outputClosed = false

  init(downstream: TCPProxyDownstreamHandler) {
    self.downstream = downstream
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  var isWritable: Bool { context?.channel.isWritable ?? false }

  func write(_ bytes: inout ByteBuffer) {
    context?.write(wrapOutboundOut(bytes), promise: nil)
  }

  func flush() { context?.flush() }

  func closeOutputAfterFlush() {
    guard let context, !outputClosed else { return }
    outputClosed = true
    context.closeAfterPendingWrites(mode: .output)
  }

  func closeAfterFlush() {
    guard let context else { return }
    context.closeAfterPendingWrites(mode: .all)
  }

  func resumeReadingIfPaused() {
    guard readPending, let context else { return }
    readPending = false
    downstream.upstreamResumedReading()
    context.read()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    downstream.writeFromUpstream(&bytes)
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    downstream.flushFromUpstream()
  }

  func read(context: ChannelHandlerContext) {
    if downstream.isWritable {
      context.read()
    } else {
      if !readPending { downstream.upstreamPausedReading() }
      readPending = true
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { downstream.resumeReadingIfPaused() }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case .inputClosed? = event as? ChannelEvent {
      downstream.upstreamInputDidClose()
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  func channelInactive(context: ChannelHandlerContext) {
    downstream.upstreamDidClose()
    context.fireChannelInactive()
  }
}
