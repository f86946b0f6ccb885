package import EnvoyAPI
package import Logging

/// What `pilotfish-proxy` does with parsed options: load and validate the bootstrap, then (for now) stop,
/// because the listeners — the L4 core — are the next step of issue 6. Returns the process exit status.
package enum ProxyMain {
  package static func run(
    _ options: ProxyOptions, logger: Logger, output: (String) -> Void, errorOutput: (String) -> Void
  ) -> Int32 {
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
      output("configuration '\(configName)' OK")
      return 0
    case .serve, .initOnly:
      logger.error(
        "the proxy's listeners are not implemented yet; configuration loaded and validated but nothing will be served",
        metadata: [
          "proxy.node": "\(bootstrap.node.id)",
          "proxy.listeners": "\(bootstrap.staticResources.listeners.count)",
          "proxy.clusters": "\(bootstrap.staticResources.clusters.count)",
        ])
      return 1
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
    var bootstrap = loaded.bootstrap
    if let cluster = options.serviceCluster { bootstrap.node.cluster = cluster }
    if let node = options.serviceNode { bootstrap.node.id = node }
    if let zone = options.serviceZone { bootstrap.node.locality.zone = zone }
    let validator = BootstrapValidator(
      source: options.configPath ?? BootstrapLoader.configYAMLSource, requireAdmin: options.mode != .validate)
    try validator.validate(bootstrap)
    return bootstrap
  }
}
