package import NIOCore

/// A data path other than NIO channels that serves some listeners (ProxyEngine's reactors). The listener
/// manager asks it first; listeners it cannot serve yet stay on NIO.
package protocol ListenerEngine: Sendable {
  /// Whether the engine serves `listener` (its filter chains, listener filters and hand-off).
  func canServe(_ listener: ActiveListener) -> Bool
  /// Binds `listener` on every worker and starts accepting.
  func bind(_ listener: ActiveListener, context: ProxyContext, globalConnectionLimit: Int?) async throws
    -> any ListenerEngineBinding
}

/// A listener bound by a `ListenerEngine`.
package protocol ListenerEngineBinding: Sendable {
  var boundAddress: SocketAddress? { get }
  /// Closes the listening sockets; open connections are not touched.
  func stopAccepting() async
}
