internal import Logging
package import NIOCore

/// Binds the listeners on the data path's workers (which accept, hand off by original destination, run the
/// listener filters and give each connection to its filter chain), and stops accepting for drain and
/// shutdown.
package final class ListenerManager: Sendable {
  package let listeners: [ActiveListener]
  private let table: HandOffTable
  private let proxy: ProxyContext
  private let workersStarted: Gauge
  /// The overload manager's `global_downstream_max_connections`, over every listener that does not
  /// set `ignore_global_conn_limit`.
  private let globalConnectionLimit: Int?
  /// The data path (ProxyEngine's reactors) that binds and serves the listeners.
  private let engine: any ListenerEngine

  package init(
    listeners configs: [Listener], context: ProxyContext, engine: any ListenerEngine,
    globalConnectionLimit: Int? = nil
  ) {
    self.globalConnectionLimit = globalConnectionLimit
    self.engine = engine
    self.listeners = configs.map { ActiveListener(config: $0, stats: context.stats) }
    self.table = HandOffTable(listeners)
    self.proxy = context
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
        guard servable(listener) else {
          throw ProxyConfigError(
            "", "a filter chain ends in a network filter the data path cannot serve")
        }
        let binding = try await engine.bind(
          listener, handOff: table, context: proxy, globalConnectionLimit: globalConnectionLimit)
        listener.setEngineBinding(binding)
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
        ])
    }
    workersStarted.set(1)
  }

  /// Whether the engine serves `listener`: its own filter chains, and for a `use_original_dst` listener those
  /// of every listener it may hand a connection to.
  private func servable(_ listener: ActiveListener) -> Bool {
    guard engine.canServe(listener) else { return false }
    return !listener.config.useOriginalDestination || listeners.allSatisfy { engine.canServe($0) }
  }

  /// Closes the listening sockets (all, or only those with traffic_direction INBOUND).
  package func stopAccepting(inboundOnly: Bool) async {
    for listener in listeners where !inboundOnly || listener.config.trafficDirection == .inbound {
      if await listener.stopAccepting() {
        proxy.logger.info("listener stopped", metadata: ["proxy.listener": "\(listener.name)"])
      }
    }
  }
}

/// Finds the listener a `use_original_dst` listener hands a connection to: exact `IP:port` first, then
/// the wildcard address of the same family and port.
package struct HandOffTable: Sendable {
  private let exact: [SocketAddress: ActiveListener]
  private let wildcard: [WildcardKey: ActiveListener]

  private struct WildcardKey: Hashable {
    var v6: Bool
    var port: Int
  }

  package init(_ listeners: [ActiveListener]) {
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

  package func listener(for destination: SocketAddress) -> ActiveListener? {
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
