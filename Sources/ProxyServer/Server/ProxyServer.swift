package import EnvoyAPI
internal import Foundation
package import Logging
package import NIOCore
package import NIOPosix
package import ProxyCore
package import ProxyEngine
package import ProxyHTTP
internal import ServiceLifecycle
internal import Synchronization
internal import XDSClient

/// The running proxy: clusters, listeners, the admin API and the lifecycle that ties them together (one
/// `ServiceGroup`). `run()` starts everything, reports LIVE, and returns after a shutdown request (SIGTERM,
/// SIGINT, `/quitquitquit`), having stopped the listeners and closed every connection.
package final class ProxyServer: Sendable {
  package let options: ProxyOptions
  package let bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap
  package let stats: StatsStore
  package let state: ServerState
  package let clusterManager: ClusterManager
  package let listenerManager: ListenerManager
  package let context: ProxyContext
  /// RDS route tables by name, shared by every HTTP connection manager.
  package let routes: RouteConfigRegistry
  /// What `dynamic_resources` asks for.
  package let xds: XDSSettings
  /// Accepted xDS (and config-file) resources, applied to the managers.
  package let dynamic: DynamicResources
  package let logLevels: LogLevelControl
  package let group: MultiThreadedEventLoopGroup
  /// The reactor workers: the data path, serving every listener.
  package let engine: ReactorListenerEngine
  package let concurrency: Int
  let accessLog: AccessLogSink
  let logger: Logger
  let logHandler: @Sendable (String) -> any LogHandler
  private let serviceGroup = Mutex<ServiceGroup?>(nil)
  private let startupError = Mutex<(any Error)?>(nil)
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
    routes = RouteConfigRegistry()
    let filters = ProxyServer.filterRegistry(routes: routes)
    let buildContext = FilterBuildContext(stats: stats, accessLog: accessLog)
    do {
      resources = try StaticResources(bootstrap, registry: filters, context: buildContext)
      xds = try XDSSettings(bootstrap, staticClusters: resources.clusters, options: options)
    } catch {
      try? group.syncShutdownGracefully()
      throw BootstrapError(code: .invalidConfig, source: source, path: error.path, message: error.message)
    }
    var seen: Set<String> = []
    for warning in resources.warnings where seen.insert(warning.message).inserted {
      logger.warning("\(warning)")
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
      globalConnectionLimit: runtime.integer("overload.global_downstream_max_connections"),
      isWarm: DynamicResources.isWarm)
    dynamic = DynamicResources(
      clusters: clusterManager, listeners: listenerManager, routes: routes, filters: filters,
      buildContext: buildContext, staticClusterNames: Set(resources.clusters.map(\.name)),
      staticListenerNames: Set(listeners.map(\.name)),
      drainTime: .seconds(Int64(clamping: options.drainTimeSeconds)), stats: stats,
      logger: logLevels.logger("config", base: logHandler))
  }

  /// The network filters this proxy builds: tcp_proxy and the HTTP connection manager (whose RDS route
  /// tables are looked up in `routes`).
  package static func filterRegistry(routes: RouteConfigRegistry = RouteConfigRegistry())
    -> NetworkFilterRegistry
  {
    var registry = NetworkFilterRegistry.withTcpProxy()
    HTTPConnectionManagerFilter.register(into: &registry, routes: routes)
    return registry
  }

  package var boundAdminAddress: SocketAddress? { adminAddress.withLock { $0 } }

  /// Starts the admin API, then runs the proxy as one `ServiceGroup` — the data plane (workers and
  /// listeners), cluster DNS refresh, housekeeping and the admin server — until SIGTERM, SIGINT or
  /// `/quitquitquit` shuts it down gracefully: listeners stop accepting, the workers close what is still
  /// open, the admin server goes last. Throws when the listeners cannot start.
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
    // Shut down in reverse order: the data plane first, the admin server (which may be answering
    // /quitquitquit) last.
    var configServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
    let configLogger = logLevels.logger("config", base: logHandler)
    for (type, source) in [(ResourceType.cluster, xds.clusters), (.listener, xds.listeners)] {
      guard case .file(let path)? = source else { continue }
      configServices.append(
        .init(
          service: FileConfigService(
            source: FileConfigSource(path: path, type: type, resources: dynamic, logger: configLogger),
            initialization: initialization)))
    }
    if let ads = xds.ads,
      xds.clusters.map({ if case .ads = $0 { true } else { false } }) == true
        || xds.listeners.map({ if case .ads = $0 { true } else { false } }) == true
    {
      configServices.append(.init(service: makeADSClient(ads, logger: configLogger)))
    }
    let services = ServiceGroup(
      configuration: .init(
        services: [
          .init(service: AdminService(channel: adminChannel)),
          .init(service: ClusterRefreshService(clusters: clusterManager)),
          .init(service: HousekeepingService(server: self)),
        ] + configServices + [
          .init(
            service: DataPlaneService(server: self), successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup)
        ],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    serviceGroup.withLock { $0 = services }
    if shutdownFlag.load(ordering: .relaxed) { await services.triggerGracefulShutdown() }
    var failure: (any Error)?
    do {
      try await services.run()
    } catch {
      // The listeners' own error when they could not start (it names the listener and address).
      failure = startupError.withLock { $0 } ?? error
      if startupError.withLock({ $0 }) == nil { logger.critical("stopped on an error: \(error)") }
    }
    accessLog.flush(waitingUpTo: .seconds(2))
    try? await group.shutdownGracefully()
    if let failure { throw failure }
    logger.info("exited cleanly")
  }

  /// The data plane's start (run by `DataPlaneService`): clusters resolved, dynamic clusters and listeners
  /// received (as Envoy's init manager orders it: CDS and EDS, then LDS and RDS), listeners bound, LIVE.
  func startServing() async throws {
    state.set(.initializing)
    await clusterManager.initialize()
    await waitForDynamicResources()
    do {
      try await listenerManager.start()
    } catch {
      logger.critical("cannot start: \(error)")
      startupError.withLock { $0 = error }
      throw error
    }
    state.set(.live)
    let initMs = (ContinuousClock.now - startedAt).components
    stats.histogram("server.initialization_time_ms").record(
      Double(initMs.seconds) * 1000 + Double(initMs.attoseconds) / 1e15)
    logger.info(
      "all listeners started; server LIVE",
      metadata: [
        "proxy.listeners": "\(listenerManager.listeners.count)", "proxy.concurrency": "\(concurrency)",
      ])
  }

  /// The data plane's end: listeners stop accepting, then the workers stop (closing every connection).
  func stopServing() async {
    logger.info(
      "shutting down: listeners stop accepting, workers close their connections",
      metadata: ["proxy.reason": "\(shutdownFlag.load(ordering: .relaxed) ? "requested" : "signal")"])
    await listenerManager.stopAccepting(inboundOnly: false)
    engine.shutdown()
  }

  /// `/quitquitquit` (and tests): a graceful shutdown of the whole group, as SIGTERM.
  package func requestShutdown(reason: String) {
    guard !shutdownFlag.exchange(true, ordering: .relaxed) else { return }
    logger.info("shutting down", metadata: ["proxy.reason": "\(reason)"])
    guard let services = serviceGroup.withLock({ $0 }) else { return }  // `run()` triggers it once it exists
    Task { await services.triggerGracefulShutdown() }
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

  /// The ADS client for `dynamic_resources.ads_config`, subscribed to CDS and LDS (wildcard) when they come
  /// over ADS; EDS and RDS follow the config.
  private func makeADSClient(_ ads: XDSSettings.ADS, logger: Logger) -> ADSClient {
    let target: ADSClientConfiguration.Target =
      switch ads.server {
      case .unix(let path): .unix(path: path)
      case .tcp(let host, let port): .tcp(host: host, port: port, tls: nil)
      }
    let subscriber = ADSConfigSubscriber(dynamic: dynamic, stats: stats, logger: logger)
    let client = ADSClient(
      configuration: ADSClientConfiguration(
        api: ads.api == .delta ? .delta : .stateOfTheWorld, target: target, node: ads.node,
        setNodeOnFirstMessageOnly: ads.setNodeOnFirstMessageOnly),
      subscriber: subscriber, logger: logger)
    subscriber.attach(client)
    if case .ads? = xds.clusters { client.setSubscription(XDSTypeURL.cluster, .wildcard) }
    if case .ads? = xds.listeners { client.setSubscription(XDSTypeURL.listener, .wildcard) }
    logger.info(
      "xDS: ADS stream to the control plane",
      metadata: [
        "proxy.xds.api": "\(ads.api == .delta ? "delta" : "sotw")", "proxy.xds.cluster": "\(ads.clusterName)",
        "proxy.xds.server": "\(ads.server)",
      ])
    return client
  }

  /// Tracks the first update of each file config source.
  let initialization = InitializationTracker()

  /// Waits until the dynamic clusters (and their endpoints) and then the dynamic listeners (and their
  /// routes) have arrived, each source bounded by its `initial_fetch_timeout`.
  func waitForDynamicResources() async {
    for (type, source) in [(ResourceType.cluster, xds.clusters), (.listener, xds.listeners)] {
      switch source {
      case nil:
        continue
      case .file?:
        await initialization.wait(for: type)
      case .ads(let timeout)?:
        let dependent: ResourceType = type == .cluster ? .endpoint : .route
        let done = await initialization.poll(timeout: timeout) {
          self.dynamic.isInitialized(type)
            && (type == .cluster
              ? self.clusterManager.warming.isEmpty : self.listenerManager.warmingListeners.isEmpty)
        }
        if !done {
          await dynamic.initialFetchTimedOut(type)
          await dynamic.initialFetchTimedOut(dependent)
        }
      }
    }
  }

  func periodicHousekeeping() async {
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
      await listenerManager.closeExpiredDrains()
      sinceMerge += tick
      if sinceMerge >= .seconds(5) {
        sinceMerge = .zero
        stats.mergeHistograms()
      }
    }
  }

}
