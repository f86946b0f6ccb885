internal import NIOCore

/// Runs the byte-reading listener filters (tls_inspector, http_inspector) on a new connection: it keeps
/// what arrives until every inspector has decided (or the listener-filter timeout fires), records the
/// transport protocol, SNI and ALPN on the connection, hands the connection to its filter chain with the
/// bytes read so far, and removes itself. Nothing is forwarded before the chain is chosen.
final class ListenerFilterHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer

  private var connection: DownstreamConnection
  private let listener: ActiveListener
  private let proxy: ProxyContext
  private var inspectTLS: Bool
  private var inspectHTTP: Bool
  private var buffered: ByteBuffer?
  private var timeout: Scheduled<Void>?
  private var done = false

  init(connection: DownstreamConnection, listener: ActiveListener, proxy: ProxyContext, tls: Bool, http: Bool)
  {
    self.connection = connection
    self.listener = listener
    self.proxy = proxy
    self.inspectTLS = tls
    self.inspectHTTP = http
  }

  func handlerAdded(context: ChannelHandlerContext) {
    listener.stats.preCxActive.inc()
    guard let limit = listener.config.listenerFiltersTimeout else { return }
    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    timeout = context.eventLoop.scheduleTask(in: limit) {
      let (handler, context) = loopBound.value
      handler.timedOut(context: context)
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    timeout?.cancel()
    if !done {
      done = true
      listener.stats.preCxActive.dec()
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    if buffered == nil {
      buffered = bytes
    } else {
      buffered!.writeBuffer(&bytes)
    }
    inspect(context: context)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case .inputClosed? = event as? ChannelEvent, !done {
      // The peer finished sending before the inspectors decided: go on with what is known.
      finish(context: context)
    }
    context.fireUserInboundEventTriggered(event)
  }

  private func inspect(context: ChannelHandlerContext) {
    guard let buffered else { return }
    buffered.withUnsafeReadableBytes { bytes in
      if inspectTLS {
        switch TLSClientHelloInspector.inspect(bytes) {
        case .needMoreData: return
        case .tls(let serverName, let alpn):
          connection.transportProtocol = "tls"
          connection.serverName = serverName
          connection.applicationProtocols = alpn
          inspectTLS = false
          inspectHTTP = false  // http_inspector leaves TLS connections alone
        case .notMatched, .http:
          inspectTLS = false
        }
      }
      if inspectHTTP {
        switch HTTPInspector.inspect(bytes) {
        case .needMoreData: return
        case .http(let proto):
          connection.applicationProtocols = [proto]
          inspectHTTP = false
        case .notMatched, .tls:
          inspectHTTP = false
        }
      }
    }
    if !inspectTLS && !inspectHTTP { finish(context: context) }
  }

  private func timedOut(context: ChannelHandlerContext) {
    guard !done else { return }
    listener.stats.preCxTimeout.inc()
    if listener.config.continueOnListenerFiltersTimeout {
      finish(context: context)
    } else {
      done = true
      listener.stats.preCxActive.dec()
      context.close(promise: nil)
    }
  }

  private func finish(context: ChannelHandlerContext) {
    guard !done else { return }
    done = true
    timeout?.cancel()
    listener.stats.preCxActive.dec()
    let bytes = buffered
    buffered = nil
    listener.serve(context.channel, connection: connection, context: proxy, initialBytes: bytes)
    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
  }
}
