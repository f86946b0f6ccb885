package import Logging
package import NIOCore
package import NIOHTTP1
internal import ServiceLifecycle

/// `pilotfish proxy sidecar`: writes the bootstrap, binds the status and metrics servers, then runs them and
/// the proxy supervisor in one `ServiceGroup` until SIGTERM/SIGINT, `/quitquitquit`, or the proxy's restart
/// budget running out (then `run()` throws and the agent exits non-zero).
package struct SidecarAgent: Sendable {
  package var settings: SidecarSettings
  private let logger: Logger
  private let onListening: @Sendable (_ role: String, SocketAddress) -> Void

  package init(
    settings: SidecarSettings, logger: Logger,
    onListening: @escaping @Sendable (_ role: String, SocketAddress) -> Void = { _, _ in }
  ) {
    self.settings = settings
    self.logger = logger
    self.onListening = onListening
  }

  package func run() async throws {
    let settings = self.settings
    let files = FileDescriptorLimit.raise()
    if let error = files.error {
      logger.warning("cannot raise the open-files limit: \(error)")
    }
    logger.info(
      "open-files limit (RLIMIT_NOFILE)",
      metadata: ["agent.rlimit.nofile.soft": "\(files.soft)", "agent.rlimit.nofile.hard": "\(files.hard)"])
    let path = try settings.generator.write(root: settings.root)
    logger.info("wrote the proxy bootstrap", metadata: ["agent.bootstrap.path": "\(path)"])
    if let uid = settings.launch.userID {
      // Found now rather than as ten restarts on "permission denied" from the proxy.
      let gid = settings.launch.groupID ?? uid
      if let reason = PrivilegeDrop.unreadableReason(path: path, uid: uid, gid: gid) {
        throw AgentError(
          .invalidFile,
          "the proxy runs as uid \(uid) (gid \(gid)) and could not read its bootstrap: \(reason); run the agent "
            + "from a directory uid \(uid) can search (e.g. chmod o+x on it), point ProxyConfig configPath or "
            + "--config-path at one, or keep the agent's uid with --proxy-uid -1 --proxy-gid -1")
      }
    }

    let state = AgentState()
    let client = LocalHTTPClient()
    let supervisor = ProxySupervisor(
      launch: settings.launch, policy: settings.policy, adminPort: settings.adminPort, state: state,
      client: client, logger: logger)
    let readiness = ReadinessProbe(
      adminPort: settings.adminPort, checkConfig: settings.generator.hasControlPlane, state: state,
      client: client,
      logger: logger)
    let metrics = MetricsEndpoint(
      adminPort: settings.adminPort, mergeProxyStats: settings.mergeProxyStats,
      application: settings.scrapeTargets,
      state: state, client: client, logger: logger)
    let source = settings.probeTarget.contains(":") ? nil : "127.0.0.6"
    let probes = AppProbeRunner(
      probers: settings.probers, target: settings.probeTarget, sourceAddress: source,
      statusPort: settings.statusPort, client: client)
    func routes(_ role: StatusRoutes.Role) -> StatusRoutes {
      StatusRoutes(
        role: role, readiness: readiness, metrics: metrics, probes: probes,
        metricsLocalhostOnly: settings.metricsLocalhostOnly, quit: { supervisor.quit() },
        drain: { supervisor.drainNow() })
    }
    let onListening = self.onListening
    let status = StatusServer(
      host: settings.statusAddress, port: settings.statusPort, routes: routes(.status), logger: logger,
      onListening: { onListening("status", $0) })
    let metricsServer = StatusServer(
      host: settings.metricsAddress, port: settings.metricsPort, routes: routes(.metrics), logger: logger,
      onListening: { onListening("metrics", $0) })

    // Bind both before the proxy starts, so a taken port fails first.
    let statusChannel = try await status.bind()
    let metricsChannel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    do {
      metricsChannel = try await metricsServer.bind()
    } catch {
      try? await statusChannel.channel.close()
      throw error
    }

    let secrets = SecretCache(
      source: try settings.identity.makeSource(logger: logger), policy: settings.identity.policy,
      outputDirectory: settings.identity.outputDirectory, fileAccess: settings.identity.fileAccess, logger: logger)
    let owner = settings.launch.userID.map { ($0, settings.launch.groupID ?? $0) }
    let sds = SDSServer(
      socketPath: settings.identity.socketPath, owner: owner, cache: secrets, logger: logger,
      onListening: { _ in })
    var identityServices: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: secrets), .init(service: sds)]
    if let upstream = settings.xdsUpstream {
      let xds = XDSProxy(
        socketPath: PodMetadata.join(settings.root, settings.generator.xdsSocketPath), owner: owner,
        upstream: upstream, logger: logger)
      identityServices.append(.init(service: xds))
    }

    let group = ServiceGroup(
      configuration: .init(
        services: identityServices + [
          .init(service: BoundServer(server: status, channel: statusChannel)),
          .init(service: BoundServer(server: metricsServer, channel: metricsChannel)),
          .init(
            service: supervisor, successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
    logger.info("agent stopped")
  }

  private struct BoundServer: Service {
    var server: StatusServer
    var channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>

    func run() async throws {
      try await server.serve(channel)
    }
  }
}
