package import Logging
package import NIOCore
package import NIOPosix
internal import Synchronization

#if canImport(Glibc)
  internal import Glibc
#endif

/// Binds the listeners, accepts connections on the worker event loops, performs the original-destination
/// hand-off, runs listener filters and gives each connection to its filter chain. Also stops accepting
/// for drain and shutdown.
package final class ListenerManager: Sendable {
  package let listeners: [ActiveListener]
  private let table: HandOffTable
  private let proxy: ProxyContext
  private let group: any EventLoopGroup
  private let workersStarted: Gauge
  /// The overload manager's `global_downstream_max_connections`, over every listener that does not
  /// set `ignore_global_conn_limit`.
  private let globalConnectionLimit: Int?
  /// Serves the listeners it can (the reactor data path); the others are bound on `group`.
  private let engine: (any ListenerEngine)?

  package init(
    listeners configs: [Listener], context: ProxyContext, group: any EventLoopGroup,
    globalConnectionLimit: Int? = nil, engine: (any ListenerEngine)? = nil
  ) {
    self.globalConnectionLimit = globalConnectionLimit
    self.engine = engine
    self.listeners = configs.map { ActiveListener(config: $0, stats: context.stats) }
    self.table = HandOffTable(listeners)
    self.proxy = context
    self.group = group
    let stats = context.stats
    self.workersStarted = stats.gauge("listener_manager.workers_started")
    stats.counter("listener_manager.listener_added").add(UInt64(configs.count))
    stats.gauge("listener_manager.total_listeners_warming").set(0)
    stats.gauge("listener_manager.total_listeners_draining").set(0)
    stats.gauge("listener_manager.total_listeners_active").set(UInt64(configs.count))
  }

  package func listener(named name: String) -> ActiveListener? { listeners.first { $0.name == name } }

  /// Binds every listener with `bind_to_port`; on failure closes what was bound and throws an error that
  /// names the listener and address.
  package func start() async throws(ListenerError) {
    for listener in listeners where listener.config.bindToPort {
      do {
        if let engine, engine.canServe(listener) {
          let binding = try await engine.bind(
            listener, context: proxy, globalConnectionLimit: globalConnectionLimit)
          listener.setEngineBinding(binding)
        } else {
          let channel = try await bootstrap(for: listener).bind(to: listener.config.address).get()
          listener.setServerChannel(channel)
        }
        proxy.stats.counter("listener_manager.listener_create_success").inc()
      } catch {
        proxy.stats.counter("listener_manager.listener_create_failure").inc()
        await stopAccepting(inboundOnly: false)
        throw ListenerError(
          listener: listener.name, address: listener.config.address.envoyDescription, reason: "\(error)")
      }
      proxy.logger.info(
        "listener started",
        metadata: [
          "proxy.listener": "\(listener.name)",
          "proxy.address": "\(listener.boundAddress?.envoyDescription ?? "?")",
          "proxy.data_path": "\(listener.servedByEngine ? "reactor" : "nio")",
        ])
    }
    workersStarted.set(1)
  }

  /// Closes the listening sockets (all, or only those with traffic_direction INBOUND).
  package func stopAccepting(inboundOnly: Bool) async {
    for listener in listeners where !inboundOnly || listener.config.trafficDirection == .inbound {
      if await listener.stopAccepting() {
        proxy.logger.info("listener stopped", metadata: ["proxy.listener": "\(listener.name)"])
      }
    }
  }

  private func bootstrap(for listener: ActiveListener) -> ServerBootstrap {
    let config = listener.config
    let limit = max(32 * 1024, config.perConnectionBufferLimitBytes)
    var bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: Int32(clamping: config.backlog))
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    if case .v6 = config.address {
      bootstrap = bootstrap.serverChannelOption(
        ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: 26),  // IPV6_V6ONLY
        value: config.ipv4Compatible ? 0 : 1)
    }
    if config.transparent {
      let isV6: Bool = if case .v6 = config.address { true } else { false }
      bootstrap = bootstrap.serverChannelOption(
        ChannelOptions.Types.SocketOption(
          level: isV6 ? SocketOptionLevel(IPPROTO_IPV6) : SocketOptionLevel(IPPROTO_IP),
          name: isV6 ? 75 : 19),  // IPV6_TRANSPARENT, IP_TRANSPARENT
        value: 1)
    }
    // accept(2) failing with EMFILE/ENFILE leaves the connection in the backlog and the listening socket
    // readable: the listener pauses for 100 ms instead of retrying at once, counted and logged.
    let stats = listener.stats
    let logger = proxy.logger
    let lastLog = LastSecond()
    bootstrap = bootstrap.serverChannelInitializer { channel in
      channel.eventLoop.makeCompletedFuture {
        try channel.pipeline.syncOperations.addHandler(
          AcceptPauseHandler { error in
            stats.acceptFdExhausted.inc()
            let now = Int64(clamping: NIODeadline.now().uptimeNanoseconds / 1_000_000_000)
            if lastLog.second.exchange(now, ordering: .relaxed) != now {
              logger.warning(
                "cannot accept connections: \(error); pausing the listener for 100 ms (raise the open-files limit)",
                metadata: ["proxy.listener": "\(listener.name)"])
            }
          })
      }
    }
    // Child options are set synchronously in `accept` (not `childChannelOption`, which applies each one
    // through a chain of futures per connection).
    return bootstrap.childChannelInitializer { [self] channel in
      do {
        try UpstreamConnector.configure(channel, bufferLimit: limit)
      } catch {
        return channel.eventLoop.makeFailedFuture(error)
      }
      return self.accept(channel, acceptedBy: listener)
    }
  }

  /// Runs on the new connection's event loop, before it is registered.
  private func accept(_ channel: any Channel, acceptedBy accepting: ActiveListener) -> EventLoopFuture<Void> {
    let loop = channel.eventLoop
    guard let local = channel.localAddress, let remote = channel.remoteAddress else {
      return loop.makeSucceededVoidFuture()
    }
    guard accepting.restoresOriginalDestination || accepting.config.transparent else {
      // No socket option to read: set up synchronously, without a future per connection.
      setUp(channel, acceptedBy: accepting, local: local, remote: remote, originalDestination: nil)
      return loop.makeSucceededVoidFuture()
    }
    return OriginalDestination.read(from: channel).map { [self] originalDestination in
      setUp(
        channel, acceptedBy: accepting, local: local, remote: remote, originalDestination: originalDestination
      )
    }
  }

  /// The original-destination hand-off, limits, and listener filters or the filter chain.
  private func setUp(
    _ channel: any Channel, acceptedBy accepting: ActiveListener, local: SocketAddress, remote: SocketAddress,
    originalDestination: SocketAddress?
  ) {
    var restored = originalDestination
    if restored == nil, accepting.config.transparent, local != accepting.config.address {
      restored = local  // TPROXY: the socket's local address is the original destination
    }
    var target = accepting
    if accepting.config.useOriginalDestination, let destination = restored,
      let handOff = table.listener(for: destination), handOff !== accepting
    {
      target = handOff
    }
    let restoring =
      restored != nil && (accepting.restoresOriginalDestination || target.restoresOriginalDestination)
    var connection = DownstreamConnection(
      id: proxy.makeConnectionID(), listener: target.info, remoteAddress: remote,
      localAddress: restoring ? restored! : local)
    connection.localAddressRestored = restoring
    self.track(channel, listener: target)
    if let max = target.config.maxConnections, target.stats.cxActive.value > UInt64(max) {
      target.stats.cxOverflow.inc()
      channel.close(promise: nil)
      return
    }
    if let global = globalConnectionLimit, !target.config.ignoresGlobalConnectionLimit,
      proxy.connections.count > global
    {
      target.stats.globalCxOverflow.inc()
      channel.close(promise: nil)
      return
    }
    let inspectors = target.inspectors(destinationPort: connection.localAddress.port ?? 0)
    if inspectors.tls || inspectors.http {
      let handler = ListenerFilterHandler(
        connection: connection, listener: target, proxy: proxy, tls: inspectors.tls, http: inspectors.http)
      do {
        try channel.pipeline.syncOperations.addHandler(handler)
      } catch {
        channel.close(promise: nil)
      }
    } else {
      target.serve(channel, connection: connection, context: proxy, initialBytes: nil)
    }
  }

  private func track(_ channel: any Channel, listener: ActiveListener) {
    let stats = listener.stats
    stats.cxTotal.inc()
    stats.cxActive.inc()
    let start = NIODeadline.now()
    proxy.connections.add(channel) {
      stats.cxActive.dec()
      stats.cxDestroy.inc()
      stats.cxLengthMs.record(Double((NIODeadline.now() - start).nanoseconds) / 1_000_000)
    }
  }
}

/// Finds the listener a `use_original_dst` listener hands a connection to: exact `IP:port` first, then
/// the wildcard address of the same family and port.
struct HandOffTable: Sendable {
  private let exact: [SocketAddress: ActiveListener]
  private let wildcard: [WildcardKey: ActiveListener]

  private struct WildcardKey: Hashable {
    var v6: Bool
    var port: Int
  }

  init(_ listeners: [ActiveListener]) {
    var exact: [SocketAddress: ActiveListener] = [:]
    var wildcard: [WildcardKey: ActiveListener] = [:]
    for listener in listeners {
      let address = listener.config.address
      if address.isAnyAddress {
        let key = WildcardKey(
          v6: { if case .v6 = address { true } else { false } }(), port: address.port ?? 0)
        if wildcard[key] == nil { wildcard[key] = listener }
      } else if exact[address] == nil {
        exact[address] = listener
      }
    }
    self.exact = exact
    self.wildcard = wildcard
  }

  func listener(for destination: SocketAddress) -> ActiveListener? {
    if let match = exact[destination] { return match }
    let isV6: Bool = if case .v6 = destination { true } else { false }
    return wildcard[WildcardKey(v6: isV6, port: destination.port ?? 0)]
  }
}

/// A listener that could not be started.
package struct ListenerError: Error, Equatable, Sendable, CustomStringConvertible {
  package var listener: String
  package var address: String
  package var reason: String

  package var description: String { "listener '\(listener)': cannot bind to \(address): \(reason)" }
}

/// The second (on the monotonic clock) something was last logged: one line per second at most.
private final class LastSecond: Sendable {
  let second = Atomic<Int64>(0)
}
