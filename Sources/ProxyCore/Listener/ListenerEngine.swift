package import NIOCore

/// The data path that serves listeners (ProxyEngine's reactors).
package protocol ListenerEngine: Sendable {
  /// Whether the engine can serve `listener`'s filter chains.
  func canServe(_ listener: ActiveListener) -> Bool
  /// Binds the listener in `slot` on every worker and starts accepting. The workers follow the slot: an
  /// in-place update (same address and socket options) publishes a new listener there instead of
  /// rebinding. `handOff` finds the listener a `use_original_dst` connection goes to.
  func bind(
    _ slot: ConfigCell<ActiveListener>, handOff: ConfigCell<HandOffTable>, context: ProxyContext,
    globalConnectionLimit: Int?
  ) async throws -> any ListenerEngineBinding
  /// Closes, on every worker, the connections still open on filter chains whose drain is one of `drains`.
  func closeConnections(drainedBy drains: [ChainDrain]) async
}

/// A listener bound by a `ListenerEngine`.
package protocol ListenerEngineBinding: Sendable {
  var boundAddress: SocketAddress? { get }
  /// Closes the listening sockets; open connections are not touched.
  func stopAccepting() async
}
