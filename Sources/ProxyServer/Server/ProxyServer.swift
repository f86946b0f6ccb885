package import EnvoyAPI
internal import Foundation
package import Logging
package import NIOCore
package import NIOPosix
package import ProxyCore
package import ProxyEngine
internal import ProxyHTTP
internal import Synchronization

/// The running proxy: clusters, listeners, the admin API and the lifecycle that ties them together.
/// `run()` starts everything, reports LIVE, and returns after a shutdown request (SIGTERM, SIGINT,
/// `/quitquitquit`), having stopped the listeners and closed every connection.
package final class ProxyServer: Sendable {
  package let options: ProxyOptions
  package let bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap
  package let stats: StatsStore
  package let state: ServerState
  package let clusterManager: ClusterManager
  package let listenerManager: ListenerManager
  package let context: ProxyContext
  package let logLevels: LogLevelControl
  package let group: MultiThreadedEventLoopGroup
  /// The reactor workers (the data path leaving NIO): they serve the listeners they can.
  package let engine: ReactorListenerEngine
  package let concurrency: Int
  let accessLog: AccessLogSink
  let logger: Logger
  let logHandler: @Sendable (String) -> any LogHandler
  private let shutdownRequested = Mutex<CheckedContinuation<Void, Never>?>(nil)
  private let shutdownFlag = Atomic<Bool>(false)
  private let drainStarted = Atomic<Bool>(false)
  private let adminAddress = Mutex<SocketAddress?>(nil)
  package let startedAt = ContinuousClock.now

  package init(
    options: ProxyOptions, bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap, logLevels: LogLevelControl,
    logHandler: @escaping @Sendable (String) -> any LogHandler
  ) throws(BootstrapError) {
    self.options = options
    self.bootstrap = bootstrap
    self.logLevels = logLevels
    self.logHandler = logHandler
    let source = options.configPath ?? BootstrapLoader.configYAMLSource
    do {
      stats = try StatsStore(config: StatsConfig(bootstrap.statsConfig, path: "stats_config"))
    } catch let error as ProxyConfigError {
      throw BootstrapError(code: .invalidConfig, source: source, path: error.path, message: error.message)
    } catch {
      throw BootstrapError(code: .invalidConfig, source: source, path: "stats_config", message: "\(error)")
    }
    let requested = options.concurrency.map { max(1, Int($0)) } ?? CPUBudget.workerCount()
    concurrency = requested
    // The data path runs on its own reactor threads (`requested` of them); NIO serves the control plane
    // only (the admin API), which one thread carries.
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    logger = logLevels.logger("main", base: logHandler)
    accessLog = AccessLogSink()
    let resources: StaticResources
    do {
      resources = try StaticResources(
        bootstrap, registry: ProxyServer.filterRegistry(),
        context: FilterBuildContext(stats: stats, accessLog: accessLog))
    } catch {
      try? group.syncShutdownGracefully()
      throw BootstrapError(code: .invalidConfig, source: source, path: error.path, message: error.message)
    }
    var seen: Set<String> = []
    for warning in resources.warnings where seen.insert(warning.message).inserted {
      logger.warning("\(warning)")
    }
    if bootstrap.hasDynamicResources {
      logger.warning(
        "dynamic_resources: xDS (ADS/LDS/CDS) is not implemented yet; serving the static resources only")
    }
    state = ServerState(stats: stats, concurrency: requested)
    clusterManager = ClusterManager(
      clusters: resources.clusters, stats: stats, logger: logLevels.logger("upstream", base: logHandler))
    context = ProxyContext(
      clusterManager: clusterManager, stats: stats, logger: logLevels.logger("connection", base: logHandler),
      accessLog: accessLog)
    let runtime = RuntimeValues(bootstrap.layeredRuntime)
    var listeners = resources.listeners
    for i in listeners.indices {
      listeners[i].maxConnections = runtime.integer(
        "envoy.resource_limits.listener.\(listeners[i].name).connection_limit")
    }
    do {
      engine = try ReactorListenerEngine(
        workers: requested, logger: logLevels.logger("connection", base: logHandler))
    } catch {
      try? group.syncShutdownGracefully()
      throw BootstrapError(
        code: .invalidConfig, source: source, path: "", message: "cannot start the worker threads: \(error)")
    }
    listenerManager = ListenerManager(
      listeners: listeners, context: context, engine: engine,
      globalConnectionLimit: runtime.integer("overload.global_downstream_max_connections"))
  }

  /// The network filters this proxy builds: tcp_proxy and the HTTP connection manager.
  package static func filterRegistry() -> NetworkFilterRegistry {
    var registry = NetworkFilterRegistry.withTcpProxy()
    HTTPConnectionManagerFilter.register(into: &registry)
    return registry
  }

  package var boundAdminAddress: SocketAddress? { adminAddress.withLock { $0 } }

  /// Starts the admin API, resolves DNS clusters, binds listeners and goes LIVE; returns after shutdown.
  package func run() async throws {
    let admin = AdminServer(api: AdminAPI(server: self), logger: logLevels.logger("admin", base: logHandler))
    let adminChannel = try await admin.start(bootstrap: bootstrap, group: group)
    adminAddress.withLock { $0 = adminChannel?.localAddress }
    if let path = options.adminAddressPath, let bound = adminChannel?.localAddress {
      do {
        try (bound.envoyDescription + "\n").write(toFile: path, atomically: true, encoding: .utf8)
      } catch {
        logger.error("cannot write --admin-address-path \(path): \(error)")
      }
    }
    var startupError: (any Error)?
    await withTaskGroup(of: Void.self) { background in
      background.addTask { await self.clusterManager.run() }
      background.addTask { await self.periodicHousekeeping() }
      do {
        state.set(.initializing)
        await clusterManager.initialize()
        try await listenerManager.start()
        state.set(.live)
        let initMs = (ContinuousClock.now - startedAt).components
        stats.histogram("server.initialization_time_ms").record(
          Double(initMs.seconds) * 1000 + Double(initMs.attoseconds) / 1e15)
        logger.info(
          "all listeners started; server LIVE",
          metadata: [
            "proxy.listeners": "\(listenerManager.listeners.count)", "proxy.concurrency": "\(concurrency)",
          ])
        await waitForShutdown()
      } catch {
        logger.critical("cannot start: \(error)")
        startupError = error
      }
      background.cancelAll()
    }
    await finalShutdown(adminChannel: adminChannel)
    if let startupError { throw startupError }
  }

  /// Ends `run()`: SIGTERM, SIGINT and `/quitquitquit` call this.
  package func requestShutdown(reason: String) {
    guard !shutdownFlag.exchange(true, ordering: .relaxed) else { return }
    logger.info("shutting down", metadata: ["proxy.reason": "\(reason)"])
    let waiter = shutdownRequested.withLock { current -> CheckedContinuation<Void, Never>? in
      defer { current = nil }
      return current
    }
    waiter?.resume()
  }

  private func waitForShutdown() async {
    await withCheckedContinuation { continuation in
      let resumeNow = shutdownRequested.withLock { current -> Bool in
        if shutdownFlag.load(ordering: .relaxed) { return true }
        current = continuation
        return false
      }
      if resumeNow { continuation.resume() }
    }
  }

  /// `/drain_listeners`: stop accepting now, or (graceful) mark the listeners draining — HTTP answers with
  /// `connection: close`, immediately or spread over the drain time (`--drain-strategy`) — and stop
  /// accepting when `--drain-time-s` has passed.
  package func drainListeners(inboundOnly: Bool, graceful: Bool) {
    if graceful {
      guard !drainStarted.exchange(true, ordering: .relaxed) else { return }
      context.drain.start(
        inboundOnly: inboundOnly, gradual: options.drainStrategy == .gradual,
        drainTime: .seconds(options.drainTimeSeconds))
      stats.gauge("listener_manager.total_listeners_draining").set(
        UInt64(
          listenerManager.listeners.filter { !inboundOnly || $0.config.trafficDirection == .inbound }.count))
      let seconds = options.drainTimeSeconds
      logger.info(
        "draining listeners",
        metadata: ["proxy.inbound_only": "\(inboundOnly)", "proxy.drain_time_s": "\(seconds)"])
      Task {
        try? await Task.sleep(for: .seconds(seconds))
        await self.listenerManager.stopAccepting(inboundOnly: inboundOnly)
      }
    } else {
      logger.info("stopping listeners", metadata: ["proxy.inbound_only": "\(inboundOnly)"])
      Task { await self.listenerManager.stopAccepting(inboundOnly: inboundOnly) }
    }
  }

  private func periodicHousekeeping() async {
    // Access logs every --file-flush-interval-msec (at least 10 ms); sampled gauges every second;
    // histogram intervals every 5 s (Envoy's default stats flush interval).
    let tick = min(
      Duration.milliseconds(Int64(clamping: max(10, options.fileFlushIntervalMilliseconds))), .seconds(1))
    var sinceMerge = Duration.zero
    let droppedLines = stats.counter("access_log_file.dropped_lines")
    var droppedReported: UInt64 = 0
    while !Task.isCancelled {
      try? await Task.sleep(for: tick)
      accessLog.flush()
      let dropped = accessLog.droppedLines
      if dropped > droppedReported {
        if droppedReported == 0 {
          logger.warning("access log lines are being dropped: a log file or stdout is not taking writes")
        }
        droppedLines.add(dropped - droppedReported)
        droppedReported = dropped
      }
      state.refreshSampledGauges(connections: context.connections.count)
      sinceMerge += tick
      if sinceMerge >= .seconds(5) {
        sinceMerge = .zero
        stats.mergeHistograms()
      }
    }
  }

  private func finalShutdown(adminChannel: (any Channel)?) async {
    await listenerManager.stopAccepting(inboundOnly: false)
    engine.shutdown()  // closes every connection still open on the workers
    try? await adminChannel?.close().get()
    accessLog.flush(waitingUpTo: .seconds(2))
    try? await group.shutdownGracefully()
    logger.info("exited cleanly")
  }
}
