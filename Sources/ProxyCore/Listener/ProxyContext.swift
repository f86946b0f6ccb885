package import Logging
package import NIOCore
package import Synchronization

/// Shared state every connection's handlers reach: clusters, stats, drain state, the connection registry.
/// Created once by the composition root.
package final class ProxyContext: Sendable {
  package let clusterManager: ClusterManager
  package let stats: StatsStore
  package let logger: Logger
  package let drain: DrainState
  package let connections = ConnectionRegistry()
  package let accessLog: AccessLogSink
  private let nextConnectionID = Atomic<UInt64>(0)

  package init(clusterManager: ClusterManager, stats: StatsStore, logger: Logger, accessLog: AccessLogSink) {
    self.clusterManager = clusterManager
    self.stats = stats
    self.logger = logger
    self.drain = DrainState()
    self.accessLog = accessLog
  }

  package func makeConnectionID() -> UInt64 {
    nextConnectionID.wrappingAdd(1, ordering: .relaxed).newValue
  }
}

/// Which traffic directions are draining. HTTP connections on a draining listener answer with
/// `connection: close`; listeners stop accepting at the end of the drain.
package final class DrainState: Sendable {
  private let inbound = Atomic<Bool>(false)
  private let outbound = Atomic<Bool>(false)

  package init() {}

  package func start(inboundOnly: Bool) {
    inbound.store(true, ordering: .relaxed)
    if !inboundOnly { outbound.store(true, ordering: .relaxed) }
  }

  package func isDraining(_ direction: Listener.TrafficDirection) -> Bool {
    switch direction {
    case .inbound: inbound.load(ordering: .relaxed)
    case .outbound, .unspecified: outbound.load(ordering: .relaxed)
    }
  }

  package var anyDraining: Bool { inbound.load(ordering: .relaxed) || outbound.load(ordering: .relaxed) }
}

/// Every open downstream connection, so shutdown can close what is left and drain can count.
package final class ConnectionRegistry: Sendable {
  private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

  package init() {}

  package func add(_ channel: any Channel) {
    let key = ObjectIdentifier(channel)
    channels.withLock { $0[key] = channel }
    channel.closeFuture.whenComplete { [weak self] _ in
      self?.channels.withLock { _ = $0.removeValue(forKey: key) }
    }
  }

  package var count: Int { channels.withLock { $0.count } }

  /// Closes every registered connection; completes when all are closed.
  package func closeAll(eventLoop: any EventLoop) -> EventLoopFuture<Void> {
    let open = channels.withLock { Array($0.values) }
    let closed = open.map { channel in
      channel.close().recover { _ in }
    }
    return EventLoopFuture.andAllComplete(closed, on: eventLoop)
  }
}
