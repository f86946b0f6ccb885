internal import NIOCore
internal import ProxyCore
internal import ServiceLifecycle

/// The workers and their listeners: clusters initialized, listeners bound, LIVE; on graceful shutdown the
/// listeners stop accepting and the workers stop, closing what is still open. Its end (or its startup
/// failure) shuts the whole group down.
struct DataPlaneService: Service {
  let server: ProxyServer

  func run() async throws {
    try await server.startServing()
    try? await gracefulShutdown()  // returns at the graceful shutdown (throws if the group is cancelled)
    await server.stopServing()
  }
}

/// Re-resolves DNS clusters (STRICT_DNS, LOGICAL_DNS) until shutdown.
struct ClusterRefreshService: Service {
  let clusters: ClusterManager

  func run() async throws {
    await cancelWhenGracefulShutdown { await clusters.run() }
    // With no DNS cluster there is nothing to refresh; a service must still last until the shutdown.
    try? await gracefulShutdown()
  }
}

/// Access-log flushes, sampled gauges and histogram intervals until shutdown.
struct HousekeepingService: Service {
  let server: ProxyServer

  func run() async throws {
    await cancelWhenGracefulShutdown { await server.periodicHousekeeping() }
    try? await gracefulShutdown()
  }
}

/// The admin listener bound before the group started: closed last, after the data plane stopped.
struct AdminService: Service {
  let channel: (any Channel)?

  func run() async throws {
    try? await gracefulShutdown()
    try? await channel?.close().get()
  }
}

/// A watched config file (`path_config_source`) for CDS or LDS.
struct FileConfigService: Service {
  let source: FileConfigSource
  let initialization: InitializationTracker

  func run() async throws {
    await cancelWhenGracefulShutdown {
      await source.run { initialization.markDone(source.type) }
    }
  }
}
