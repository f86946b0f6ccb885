package import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// Pauses a listening channel for a moment when accept(2) fails for lack of descriptors or kernel memory
/// (EMFILE, ENFILE, ENOBUFS, ENOMEM), instead of retrying at once.
///
/// Why not NIO's `AcceptBackoffHandler`: it only holds back the next `read()`, but after an accept error
/// the server channel still has its read pending and stays registered for readability, so the
/// level-triggered loop calls accept(2) again at once — measured: ~9,000 failed accepts a second and a
/// busy core. Turning `autoRead` off unregisters the socket from epoll; turning it back on re-registers it.
package final class AcceptPauseHandler: ChannelInboundHandler, RemovableChannelHandler {
  package typealias InboundIn = Any

  private let pause: TimeAmount
  private let onPause: (IOError) -> Void
  private var resume: Scheduled<Void>?

  /// - Parameter onPause: runs on the event loop for each pause (count it, log it).
  package init(pause: TimeAmount = .milliseconds(100), onPause: @escaping (IOError) -> Void = { _ in }) {
    self.pause = pause
    self.onPause = onPause
  }

  package func errorCaught(context: ChannelHandlerContext, error: any Error) {
    guard let error = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else {
      context.fireErrorCaught(error)
      return
    }
    onPause(error)
    guard resume == nil, let options = context.channel.syncOptions else { return }
    try? options.setOption(ChannelOptions.autoRead, value: false)
    let channel = context.channel
    resume = context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
      resume = nil
      try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
    }
  }

  package func channelInactive(context: ChannelHandlerContext) {
    resume?.cancel()
    resume = nil
    context.fireChannelInactive()
  }
}
