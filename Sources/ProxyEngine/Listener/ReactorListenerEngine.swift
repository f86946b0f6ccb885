package import Logging
internal import NIOConcurrencyHelpers
internal import NIOCore
package import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// The reactor data path as the listener manager's engine: one reactor thread per worker, each with its own
/// SO_REUSEPORT socket per listener, serving the listeners whose every filter chain ends in tcp_proxy or a
/// `ReactorTerminalFilter` (the HTTP connection manager), with their listener filters (original_dst,
/// tls_inspector, http_inspector) and the `use_original_dst` hand-off.
package final class ReactorListenerEngine: ListenerEngine {
  package let workers: [ReactorThread]
  private let logger: Logger

  package init(workers count: Int, logger: Logger) throws(SystemCallError) {
    var workers: [ReactorThread] = []
    for index in 0..<max(1, count) {
      do {
        workers.append(try ReactorThread(name: "worker_\(index)"))
      } catch {
        for worker in workers { worker.stopAndJoin() }
        throw error
      }
    }
    self.workers = workers
    self.logger = logger
  }

  package func canServe(_ listener: ActiveListener) -> Bool {
    let config = listener.config
    let chains = config.filterChains + (config.defaultFilterChain.map { [$0] } ?? [])
    return chains.allSatisfy { ChainTarget($0.terminal) != nil }
  }

  package func bind(
    _ slot: ConfigCell<ActiveListener>, handOff: ConfigCell<HandOffTable>, context: ProxyContext,
    globalConnectionLimit: Int?
  ) async throws -> any ListenerEngineBinding {
    let listener = slot.current
    var options = ListenSocketOptions()
    options.backlog = Int32(clamping: listener.config.backlog)
    options.transparent = listener.config.transparent
    options.ipv4Compatible = listener.config.ipv4Compatible
    options.reusePort = listener.config.reusePort
    // With SO_REUSEPORT each worker has its own socket (the kernel spreads connections); the first settles
    // the port (the config may ask for port 0) and the others bind the same one. Without it (Envoy's
    // `enable_reuse_port: false`) one socket is shared by every worker's epoll, EPOLLEXCLUSIVE.
    var address = listener.config.address
    var fds: [Int32] = []
    do {
      for _ in workers where options.reusePort || fds.isEmpty {
        let fd = try ListenSocket.open(address, options: options)
        fds.append(fd)
        if fds.count == 1, let bound = Socket.localAddress(fd) { address = bound }
      }
    } catch {
      for fd in fds { close(fd) }
      throw error
    }
    let shared = options.reusePort ? nil : fds[0]
    let binding = ReactorListenerBinding(address: address, sharedSocket: shared)
    for (index, worker) in workers.enumerated() {
      let fd = shared ?? fds[index]
      let acceptor = ReactorAcceptor(
        slot: slot, handOff: handOff, context: context, globalConnectionLimit: globalConnectionLimit,
        logger: logger)
      do {
        let handle = try worker.sync { reactor in
          UncheckedBox(
            try ListenSocket(fd: fd, reactor: reactor, ownsSocket: shared == nil, callbacks: acceptor))
        }
        binding.add(worker: worker, socket: handle)
      } catch {
        await binding.stopAccepting()  // closes the sockets already handed over, and a shared one
        if shared == nil { for pending in fds[index...] { close(pending) } }
        throw error
      }
    }
    return binding
  }

  package func closeConnections(drainedBy drains: [ChainDrain]) async {
    guard !drains.isEmpty else { return }
    let targets = Set(drains.map(ObjectIdentifier.init))
    for worker in workers {
      _ = try? worker.sync { reactor in
        var drained: [Connection] = []
        reactor.forEachHandle { handle in
          if let connection = handle as? Connection, let drain = connection.chainDrain,
            targets.contains(ObjectIdentifier(drain))
          {
            drained.append(connection)
          }
        }
        for connection in drained { connection.close(.flushWrite) }
        return drained.count
      }
    }
  }

  /// Stops every worker (their connections are closed) and waits for the threads.
  package func shutdown() {
    for worker in workers { worker.stopAndJoin() }
  }
}

/// A value handed between a reactor and the control thread; only touched on its reactor.
struct UncheckedBox<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}

/// One listener's sockets on every worker.
final class ReactorListenerBinding: ListenerEngineBinding {
  private let address: SocketAddress
  private let sockets = NIOLockedValueBox<[(ReactorThread, UncheckedBox<ListenSocket>)]>([])
  /// The one socket every worker watches when SO_REUSEPORT is off; closed after they all stopped.
  private let sharedSocket: NIOLockedValueBox<Int32?>

  init(address: SocketAddress, sharedSocket: Int32?) {
    self.address = address
    self.sharedSocket = NIOLockedValueBox(sharedSocket)
  }

  var boundAddress: SocketAddress? { address }

  func add(worker: ReactorThread, socket: UncheckedBox<ListenSocket>) {
    sockets.withLockedValue { $0.append((worker, socket)) }
  }

  func stopAccepting() async {
    let all = sockets.withLockedValue { current in
      defer { current = [] }
      return current
    }
    for (worker, socket) in all {
      _ = try? worker.sync { _ in socket.value.close() }
    }
    let shared = sharedSocket.withLockedValue { current -> Int32? in
      defer { current = nil }
      return current
    }
    if let shared { close(shared) }
  }
}

/// What a filter chain ends in, on the reactor.
enum ChainTarget {
  case tcpProxy(TcpProxyFilterRef)
  case filter(any ReactorTerminalFilter)

  init?(_ terminal: any TerminalNetworkFilter) {
    if let tcp = terminal as? TcpProxyFilter {
      self = .tcpProxy(TcpProxyFilterRef(tcp))
    } else if let filter = terminal as? any ReactorTerminalFilter {
      self = .filter(filter)
    } else {
      return nil
    }
  }
}

/// A listener's bookkeeping for one accepted connection, settled once when it ends (a struct the session
/// keeps, not a closure: no allocation per connection).
package struct ListenerConnectionAccounting {
  let listener: ListenerAccountingContext
  let startNanos: UInt64

  package func finish() {
    let stats = listener.stats
    stats.cxActive.dec()
    stats.cxDestroy.inc()
    stats.cxLengthMs.record(Double(MonotonicClock.nanoseconds() &- startNanos) / 1_000_000)
    listener.registry.engineConnectionClosed()
  }
}

/// What every connection of a listener shares for its bookkeeping, by reference (copying `ListenerStats`
/// per connection cost a retain per stat).
final class ListenerAccountingContext {
  let stats: ListenerStats
  let registry: ConnectionRegistry

  init(stats: ListenerStats, registry: ConnectionRegistry) {
    self.stats = stats
    self.registry = registry
  }
}

/// What a worker keeps per listener that serves connections (the accepting one, or a `use_original_dst`
/// hand-off target), read once from its config so accepting copies no config struct (each copy is retains).
final class ReactorServedListener {
  let listener: ActiveListener
  let accounting: ListenerAccountingContext
  let name: String
  let maxConnections: Int?
  let ignoresGlobalConnectionLimit: Bool
  let hasInspectors: Bool
  /// What each filter chain (by the selector's index) and the default chain end in.
  private let chainTargets: [ChainTarget?]
  private let defaultTarget: ChainTarget?

  init(_ listener: ActiveListener, registry: ConnectionRegistry) {
    self.listener = listener
    let config = listener.config
    self.accounting = ListenerAccountingContext(stats: listener.stats, registry: registry)
    self.name = config.name
    self.maxConnections = config.maxConnections
    self.ignoresGlobalConnectionLimit = config.ignoresGlobalConnectionLimit
    self.hasInspectors = config.listenerFilters.contains { $0.kind != .originalDestination }
    self.chainTargets = listener.selector.chains.map { $0.terminatesTLS ? nil : ChainTarget($0.terminal) }
    self.defaultTarget = listener.selector.defaultChain.flatMap {
      $0.terminatesTLS ? nil : ChainTarget($0.terminal)
    }
  }

  /// Chooses the filter chain for `info` and hands `connection` to its terminal filter (or closes it when
  /// no chain matches).
  func serve(
    _ connection: Connection, info: DownstreamConnection, proxy: ProxyContext, initialBytes: ByteBuffer?,
    accounting: ListenerConnectionAccounting, logger: Logger
  ) {
    let index = listener.selector.selectIndex(info)
    let target = index.map { chainTargets[$0] } ?? defaultTarget
    guard let target else {
      if let index, listener.selector.chains[index].terminatesTLS {
        logger.debug(
          "the filter chain terminates TLS, which is not implemented yet; closing",
          metadata: [
            "proxy.listener": "\(name)", "proxy.connection": "\(info.id)",
            "proxy.filter_chain": "\(listener.selector.chains[index].name)",
          ])
        connection.close(.noFlush)
        accounting.finish()
        return
      }
      listener.stats.noFilterChainMatch.inc()
      logger.debug(
        "no filter chain matches; closing",
        metadata: [
          "proxy.listener": "\(name)", "proxy.connection": "\(info.id)",
          "proxy.destination": "\(info.localAddress.envoyDescription)",
          "proxy.sni": "\(info.serverName ?? "-")",
        ])
      connection.close(.noFlush)
      accounting.finish()
      return
    }
    var info = info
    let drain = index.map { listener.selector.chains[$0].drain } ?? listener.selector.defaultChain?.drain
    info.chainDrain = drain
    connection.chainDrain = drain
    switch target {
    case .tcpProxy(let route):
      let session = TCPProxySession(
        route: route, proxy: proxy, connection: info, downstream: connection, initialBytes: initialBytes)
      session.accounting = accounting
      session.start()
    case .filter(let filter):
      filter.serve(connection, info: info, proxy: proxy, initialBytes: initialBytes, accounting: accounting)
    }
  }
}

/// Accepts a listener's connections on one reactor: restores the original destination, hands a
/// `use_original_dst` connection to the listener for it, applies the connection limits, runs the listener
/// filters that read bytes, and gives the connection to its filter chain.
final class ReactorAcceptor: ListenSocketCallbacks, @unchecked Sendable {
  /// The listener as last read from `slot` (an in-place update publishes a new one there).
  private var own: ReactorServedListener
  private let slot: ConfigCell<ActiveListener>
  private var slotGeneration: UInt64
  private let handOffCell: ConfigCell<HandOffTable>
  private var handOff: HandOffTable
  private var handOffGeneration: UInt64
  private let context: ProxyContext
  private let globalConnectionLimit: Int?
  private let logger: Logger
  private var bufferLimit: Int
  private var lastExhaustedLog: Int64 = 0
  private var address: SocketAddress
  private var transparent: Bool
  private var restoresOriginalDestination: Bool
  private var useOriginalDestination: Bool
  /// Hand-off targets met so far on this worker (forgotten when the hand-off table changes).
  private var targets: [ObjectIdentifier: ReactorServedListener] = [:]

  init(
    slot: ConfigCell<ActiveListener>, handOff: ConfigCell<HandOffTable>, context: ProxyContext,
    globalConnectionLimit: Int?, logger: Logger
  ) {
    self.slot = slot
    self.slotGeneration = slot.generation
    let listener = slot.current
    self.own = ReactorServedListener(listener, registry: context.connections)
    self.handOffCell = handOff
    self.handOffGeneration = handOff.generation
    self.handOff = handOff.current
    self.context = context
    self.globalConnectionLimit = globalConnectionLimit
    self.logger = logger
    let config = listener.config
    self.bufferLimit = max(32 * 1024, config.perConnectionBufferLimitBytes)
    self.address = config.address
    self.transparent = config.transparent
    self.restoresOriginalDestination = listener.restoresOriginalDestination
    self.useOriginalDestination = config.useOriginalDestination
  }

  /// Picks up a listener or hand-off table the control plane published since the last accept.
  private func refreshConfig() {
    let generation = slot.generation
    if generation != slotGeneration {
      slotGeneration = generation
      let listener = slot.current
      own = ReactorServedListener(listener, registry: context.connections)
      let config = listener.config
      bufferLimit = max(32 * 1024, config.perConnectionBufferLimitBytes)
      address = config.address
      transparent = config.transparent
      restoresOriginalDestination = listener.restoresOriginalDestination
      useOriginalDestination = config.useOriginalDestination
    }
    let handOffNow = handOffCell.generation
    if handOffNow != handOffGeneration {
      handOffGeneration = handOffNow
      handOff = handOffCell.current
      targets = [:]
    }
  }

  func onAccept(_ socket: ListenSocket, fd: Int32, peer: SocketAddress?) {
    refreshConfig()
    let connection: Connection
    do {
      connection = try Connection(
        accepted: fd, reactor: socket.reactor, bufferLimit: bufferLimit, reading: false)
    } catch {
      close(fd)
      return
    }
    // A listener on one address (not a wildcard, not transparent) knows its connections' local address
    // without a getsockname.
    let known = fixedLocalAddress(of: socket)
    guard let local = known ?? connection.localAddress, let remote = peer ?? connection.remoteAddress else {
      connection.close(.noFlush)
      return
    }
    var restored: SocketAddress?
    if restoresOriginalDestination {
      restored = Socket.originalDestination(fd, local: local)
    }
    if restored == nil, transparent, local != address {
      restored = local  // TPROXY: the socket's local address is the original destination
    }
    var served = own
    if useOriginalDestination, let destination = restored, let target = handOff.listener(for: destination),
      target !== own.listener
    {
      served = state(for: target)
    }
    let restoring =
      restored != nil && (restoresOriginalDestination || served.listener.restoresOriginalDestination)
    var info = DownstreamConnection(
      id: context.makeConnectionID(), listener: served.listener.info, remoteAddress: remote,
      localAddress: restoring ? restored! : local)
    info.localAddressRestored = restoring
    let stats = served.accounting.stats
    stats.cxTotal.inc()
    stats.cxActive.inc()
    context.connections.engineConnectionOpened()
    let accounting = ListenerConnectionAccounting(
      listener: served.accounting, startNanos: MonotonicClock.nanoseconds())
    if let max = served.maxConnections, stats.cxActive.value > UInt64(max) {
      stats.cxOverflow.inc()
      connection.close(.noFlush)
      accounting.finish()
      return
    }
    if let global = globalConnectionLimit, !served.ignoresGlobalConnectionLimit,
      context.connections.count > global
    {
      stats.globalCxOverflow.inc()
      connection.close(.noFlush)
      accounting.finish()
      return
    }
    if served.hasInspectors {
      let inspectors = served.listener.inspectors(destinationPort: info.localAddress.port ?? 0)
      if inspectors.tls || inspectors.http {
        ListenerFilterSession.start(
          connection, info: info, listener: served, proxy: context, accounting: accounting,
          tls: inspectors.tls, http: inspectors.http, logger: logger)
        return
      }
    }
    served.serve(
      connection, info: info, proxy: context, initialBytes: nil, accounting: accounting, logger: logger)
  }

  private func state(for listener: ActiveListener) -> ReactorServedListener {
    let key = ObjectIdentifier(listener)
    if let known = targets[key] { return known }
    let made = ReactorServedListener(listener, registry: context.connections)
    targets[key] = made
    return made
  }

  private func fixedLocalAddress(of socket: ListenSocket) -> SocketAddress? {
    guard !transparent, let bound = socket.localAddress, !bound.isAnyAddress else {
      return nil
    }
    if case .unixDomainSocket = bound { return nil }
    return bound
  }

  func onAcceptExhausted(_ socket: ListenSocket, errno: Int32) {
    own.accounting.stats.acceptFdExhausted.inc()
    let now = socket.reactor.now / 1000
    guard now != lastExhaustedLog else { return }
    lastExhaustedLog = now
    logger.warning(
      "cannot accept connections: \(String(cString: strerror(errno))); pausing the listener for 100 ms (raise the open-files limit)",
      metadata: ["proxy.listener": "\(own.name)"])
  }
}
