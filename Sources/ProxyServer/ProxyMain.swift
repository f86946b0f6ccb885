internal import Dispatch
package import EnvoyAPI
package import Logging
internal import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// What `pilotfish-proxy` does with parsed options: load and validate the bootstrap, then serve it until
/// SIGTERM, SIGINT or `/quitquitquit`. Returns the process exit status.
package enum ProxyMain {
  package static func run(
    _ options: ProxyOptions, logLevels: LogLevelControl,
    logHandler: @escaping @Sendable (String) -> any LogHandler,
    output: (String) -> Void, errorOutput: (String) -> Void
  ) async -> Int32 {
    let logger = logLevels.logger("config", base: logHandler)
    let configName = options.configPath ?? BootstrapLoader.configYAMLSource
    let bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap
    do {
      bootstrap = try loadAndValidate(options, logger: logger)
    } catch {
      errorOutput("error initializing configuration '\(configName)': \(error)")
      return 1
    }
    switch options.mode {
    case .validate:
      do {
        let stats = try StatsStore(config: StatsConfig(bootstrap.statsConfig, path: "stats_config"))
        let resources = try StaticResources(
          bootstrap, registry: ProxyServer.filterRegistry(),
          context: FilterBuildContext(stats: stats, accessLog: AccessLogSink(validateOnly: true)))
        for warning in resources.warnings { logger.warning("\(warning)") }
      } catch let error as ProxyConfigError {
        errorOutput("error initializing configuration '\(configName)': \(configName): \(error)")
        return 1
      } catch {
        errorOutput("error initializing configuration '\(configName)': \(error)")
        return 1
      }
      output("configuration '\(configName)' OK")
      return 0
    case .serve, .initOnly:
      if let files = OpenFilesLimit.raiseToHard() {
        let raised = files.after > files.before ? " (raised from \(files.before))" : ""
        logger.info("open files limit \(files.after)\(raised)")
      }
      let server: ProxyServer
      do {
        server = try ProxyServer(
          options: options, bootstrap: bootstrap, logLevels: logLevels, logHandler: logHandler)
      } catch {
        errorOutput("error initializing configuration '\(configName)': \(error)")
        return 1
      }
      do {
        try await server.run()
      } catch {
        errorOutput("error: \(error)")
        return 1
      }
      return 0
    }
  }

  /// Loads `-c` and `--config-yaml`, applies the `--service-*` overrides, logs allowed unknown fields,
  /// and runs the semantic checks.
  package static func loadAndValidate(
    _ options: ProxyOptions, logger: Logger
  ) throws(BootstrapError) -> Envoy_Config_Bootstrap_V3_Bootstrap {
    let loaded = try BootstrapLoader.load(
      configPath: options.configPath, configYAML: options.configYAML,
      allowUnknownFields: options.allowUnknownStaticFields)
    for warning in loaded.warnings {
      logger.warning("ignoring unknown static field: \(warning)")
    }
    // Static listeners without a name get one now, so that validation, serving and /config_dump agree.
    var bootstrap = StaticResources.namingListeners(loaded.bootstrap)
    if let cluster = options.serviceCluster { bootstrap.node.cluster = cluster }
    if let node = options.serviceNode { bootstrap.node.id = node }
    if let zone = options.serviceZone { bootstrap.node.locality.zone = zone }
    let validator = BootstrapValidator(
      source: options.configPath ?? BootstrapLoader.configYAMLSource, requireAdmin: options.mode != .validate)
    try validator.validate(bootstrap)
    return bootstrap
  }
}
