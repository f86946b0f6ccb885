package import NIOCore

/// A data path other than NIO channels that serves some listeners (ProxyEngine's reactors). The listener
/// manager asks it first; listeners it cannot serve yet stay on NIO.
package protocol ListenerEngine: Sendable {
  /// Whether the engine can serve `listener`'s filter chains. (A `use_original_dst` listener is served by
  /// the engine only when every listener it may hand a connection to can be.)
  func canServe(_ listener: ActiveListener) -> Bool
  /// Binds `listener` on every worker and starts accepting; `handOff` finds the listener a
  /// `use_original_dst` connection goes to.
  func bind(
    _ listener: ActiveListener, handOff: HandOffTable, context: ProxyContext, globalConnectionLimit: Int?
  ) async throws -> any ListenerEngineBinding
}

/// A listener bound by a `ListenerEngine`.
package protocol ListenerEngineBinding: Sendable {
  var boundAddress: SocketAddress? { get }
  /// Closes the listening sockets; open connections are not touched.
  func stopAccepting() async
}
