package import NIOCore

extension ChannelHandlerContext {
  /// Closes after everything already written on this pipeline has reached the socket: an empty write
  /// queued behind the pending ones completes in order, then the close runs. A plain `close` would drop
  /// bytes still waiting for a slow peer.
  package func closeAfterPendingWrites(mode: CloseMode = .all) {
    // Nothing buffered (the usual case: flushes write synchronously): close now, without a write and
    // a promise to wait on.
    if let buffered = try? channel.syncOptions?.getOption(.bufferedWritableBytes), buffered == 0 {
      close(mode: mode, promise: nil)
      return
    }
    let written = eventLoop.makePromise(of: Void.self)
    writeAndFlush(NIOAny(ByteBuffer()), promise: written)
    written.futureResult.assumeIsolated().whenComplete { _ in
      self.close(mode: mode, promise: nil)
    }
  }
}
