internal import Glibc
internal import Logging
internal import NIOCore

/// Answers a connection accepted by a validator listener with one line saying which listener took
/// it and where the client originally dialled (SO_ORIGINAL_DST), then closes the connection.
///
/// Invariant: exactly one report line is written per connection, in `channelActive`, and the channel
/// is closed once that line is flushed; nothing the client sends is read or echoed.
///
/// The line is `<listenerPort> <original> [direct|unreadable]\n`, where `<original>` is `ip:port`
/// (`[ip]:port` for IPv6) or `-`. `direct` means no NAT rewrote the connection: conntrack has no
/// entry for it, or its original destination is the listener's own address (a connection made
/// straight to the listener still reports one). `unreadable` means the socket option failed.
final class OriginalDestinationReporter: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// `SO_ORIGINAL_DST` (IPv4, level `SOL_IP`) and `IP6T_SO_ORIGINAL_DST` (IPv6, level `SOL_IPV6`).
  private static let originalDestinationOption: SocketOptionName = 80

  private let listenerPort: UInt16
  private let logger: Logger

  init(listenerPort: UInt16, logger: Logger) {
    self.listenerPort = listenerPort
    self.logger = logger
  }

  func channelActive(context: ChannelHandlerContext) {
    context.fireChannelActive()
    let channel = context.channel
    guard let provider = channel as? any SocketOptionProvider, let local = channel.localAddress else {
      report(context: context, original: nil, outcome: "unreadable")
      return
    }
    switch local {
    case .v4(let address):
      let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
        level: SocketOptionLevel(SOL_IP), name: Self.originalDestinationOption)
      future.assumeIsolated().whenComplete { result in
        self.report(
          context: context, local: .v4(address.address), original: result.map { .v4($0) })
      }
    case .v6(let address):
      let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
        level: SocketOptionLevel(SOL_IPV6), name: Self.originalDestinationOption)
      future.assumeIsolated().whenComplete { result in
        self.report(
          context: context, local: .v6(address.address), original: result.map { .v6($0) })
      }
    case .unixDomainSocket:
      report(context: context, original: nil, outcome: "unreadable")
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    // The client sends nothing meaningful; whatever arrives is dropped.
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    logger.debug(
      "validator listener connection failed",
      metadata: ["listener": "\(listenerPort)", "error": "\(error)"])
    context.close(promise: nil)
  }

  private func report(
    context: ChannelHandlerContext,
    local: CaptureSocketAddress,
    original: Result<CaptureSocketAddress, any Error>
  ) {
    switch original {
    case .success(let original):
      report(
        context: context, original: original.text,
        outcome: original.text == local.text ? "direct" : nil)
    case .failure(let error as IOError) where error.errnoCode == ENOENT:
      // No conntrack entry: nothing NATed this connection.
      report(context: context, original: nil, outcome: "direct")
    case .failure(let error):
      logger.debug(
        "cannot read the original destination",
        metadata: ["listener": "\(listenerPort)", "error": "\(error)"])
      report(context: context, original: nil, outcome: "unreadable")
    }
  }

  private func report(context: ChannelHandlerContext, original: String?, outcome: String?) {
    var line = "\(listenerPort) \(original ?? "-")"
    if let outcome { line += " \(outcome)" }
    line += "\n"
    logger.debug("validator listener accepted a connection", metadata: ["report": "\(line.dropLast())"])
    let buffer = context.channel.allocator.buffer(string: line)
    context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
      context.close(promise: nil)
    }
  }
}
