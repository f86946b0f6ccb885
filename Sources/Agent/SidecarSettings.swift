internal import Foundation
internal import PilotfishKit

#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// What `pilotfish proxy sidecar` was given: pilot-agent's flags plus Pilotfish's own, and the environment.
package struct SidecarOptions: Sendable {
  package var environment: [String: String]
  /// The working directory the relative Istio paths (`./etc/istio/...`) are resolved against.
  package var root = "."
  package var podMetadataPath: String?
  /// Run without istiod: the bootstrap carries the empty mesh's sidecar listeners statically. Implied by
  /// `--pod-metadata` unless a discovery address other than the mesh default is configured.
  package var noControlPlane = false
  package var meshConfigPath = "./etc/istio/config/mesh"
  package var domain: String?
  package var serviceCluster: String?
  package var proxyLogLevel = "warning"
  package var proxyComponentLogLevel = ""
  package var concurrency = 0
  package var outlierLogPath = ""
  package var templateFile = ""
  /// Directory of `envoy-rev.json` (default ProxyConfig.configPath).
  package var configPath: String?
  /// The proxy binary (default ProxyConfig.binaryPath when set, else `defaultBinaryCandidates`).
  package var binaryPath: String?
  /// Tried in order when neither `--binary-path` nor a custom ProxyConfig.binaryPath is given.
  package var defaultBinaryCandidates: [String] = []
  package var statusPort: Int?
  package var metricsPort: Int?
  package var statusAddress = "0.0.0.0"
  package var proxyUserID = 1337
  /// The `pilotfish` executable (the uid/gid trampoline, see ``PrivilegeDrop``).
  package var trampoline: String?
  package var proxyGroupID = 1337
  package var policy = ProxySupervisionPolicy()
  /// The local CA's state directory (`--local-ca-dir`), used when there is no control plane.
  package var localCADirectory: String?

  package init(environment: [String: String]) {
    self.environment = environment
  }
}

/// Everything the sidecar needs, validated before anything starts: each problem is an `AgentError` naming
/// the variable, file, annotation or flag.
package struct SidecarSettings: Sendable {
  package var pod: PodMetadata
  package var generator: BootstrapGenerator
  package var commandLine: ProxyCommandLine
  package var launch: ProxyLaunch
  package var policy: ProxySupervisionPolicy
  package var adminPort: Int
  package var statusPort: Int
  package var metricsPort: Int
  package var statusAddress: String
  package var metricsAddress: String
  package var metricsLocalhostOnly: Bool
  package var mergeProxyStats: Bool
  package var probers: AppProbers
  package var probeTarget: String
  package var scrapeTargets: PrometheusScrapeTargets?
  package var identity: IdentitySettings
  /// istiod, for the xDS proxy; nil without a control plane.
  package var xdsUpstream: IstiodConnection?
  package var bootstrapPath: String { PodMetadata.join(root, commandLine.configFile) }
  package var root: String

  package static func resolve(_ options: SidecarOptions) throws(AgentError) -> SidecarSettings {
    let env = options.environment
    if !options.templateFile.isEmpty {
      throw AgentError(
        .invalidFlag,
        "--templateFile \(options.templateFile): custom Go bootstrap templates are not supported by Pilotfish;"
          + " to change the generated bootstrap, merge a YAML or JSON file over it with ISTIO_BOOTSTRAP_OVERRIDE"
      )
    }
    var pod: PodMetadata
    if let path = options.podMetadataPath {
      pod = try PodMetadata.fromPodFile(
        path: path, environment: env, meshConfigPath: PodMetadata.join(options.root, options.meshConfigPath))
    } else {
      pod = try PodMetadata.fromEnvironment(env, root: options.root, meshConfigPath: options.meshConfigPath)
    }
    if let domain = options.domain, !domain.isEmpty { pod.domain = domain }
    let meshDefaultDiscovery = ProxyConfig.meshDefaultsDocument["discoveryAddress"]?.stringValue
    if options.noControlPlane
      || (options.podMetadataPath != nil && pod.proxyConfig.discoveryAddress == meshDefaultDiscovery)
    {
      pod.proxyConfig.discoveryAddress = ""
    }
    if let cluster = options.serviceCluster, !cluster.isEmpty, cluster != "istio-proxy",
      pod.proxyConfig.serviceCluster == "istio-proxy"
    {
      pod.proxyConfig.serviceCluster = cluster
    }
    if let configPath = options.configPath {
      guard !configPath.isEmpty else { throw AgentError(.invalidFlag, "--config-path: must not be empty") }
      pod.proxyConfig.configPath = configPath
    }
    if !options.outlierLogPath.isEmpty { pod.meta["OUTLIER_LOG_PATH"] = .string(options.outlierLogPath) }
    if let statusPort = options.statusPort {
      guard (1...65535).contains(statusPort) else {
        throw AgentError(.invalidFlag, "--status-port: \(statusPort) is not a port (1-65535)")
      }
      pod.proxyConfig.statusPort = statusPort
    }
    guard options.concurrency >= 0 else {
      throw AgentError(.invalidFlag, "--concurrency: \(options.concurrency) must not be negative")
    }
    if options.concurrency > 0, (pod.proxyConfig.concurrency ?? 0) == 0 {
      pod.proxyConfig.concurrency = options.concurrency
    }
    let generator = try BootstrapGenerator(pod: pod)
    let effective = pod.environment

    // Ports: admin, status, Envoy's health listener and the merged metrics must all differ.
    let metricsPort: Int
    if let port = options.metricsPort {
      guard (1...65535).contains(port) else {
        throw AgentError(.invalidFlag, "--metrics-port: \(port) is not a port (1-65535)")
      }
      metricsPort = port
    } else {
      metricsPort = generator.envoyPrometheusPort
    }
    let named = [
      ("proxyAdminPort", pod.proxyConfig.proxyAdminPort), ("statusPort", pod.proxyConfig.statusPort),
      ("ENVOY_STATUS_PORT", generator.envoyStatusPort), ("metrics port", metricsPort),
    ]
    for i in named.indices {
      for j in named.indices where j > i && named[i].1 == named[j].1 {
        throw AgentError(
          .invalidFlag, "port collision: \(named[i].0) and \(named[j].0) are both \(named[i].1)")
      }
    }

    func flag(_ name: String, default value: Bool) throws(AgentError) -> Bool {
      guard let text = effective[name], !text.isEmpty else { return value }
      switch text.lowercased() {
      case "true", "1", "t", "yes": return true
      case "false", "0", "f", "no": return false
      default: throw AgentError(.invalidEnvironment, "\(name): expected true or false, got \"\(text)\"")
      }
    }
    var policy = options.policy
    policy.terminationDrainDuration = pod.proxyConfig.terminationDrainDuration
    policy.exitOnZeroActiveConnections = try flag("EXIT_ON_ZERO_ACTIVE_CONNECTIONS", default: false)
    if let text = effective["MINIMUM_DRAIN_DURATION"], !text.isEmpty {
      guard let d = GoDuration.parse(text) else {
        throw AgentError(
          .invalidEnvironment,
          "MINIMUM_DRAIN_DURATION: invalid duration \"\(text)\" (e.g. 5s; \(GoDuration.rangeHint))")
      }
      policy.minimumDrainDuration = d
    }
    guard policy.maxRestarts >= 0 else {
      throw AgentError(.invalidFlag, "--max-proxy-restarts: \(policy.maxRestarts) must not be negative")
    }
    if try flag("DISABLE_ENVOY", default: false) {
      throw AgentError(.invalidEnvironment, "DISABLE_ENVOY: running without a proxy is not supported")
    }

    // The proxy's command line.
    var configFile = PodMetadata.join(pod.proxyConfig.configPath, "envoy-rev.json")
    if configFile.hasPrefix("./") { configFile.removeFirst(2) }
    var commandLine = ProxyCommandLine(configFile: configFile)
    commandLine.drainDuration = pod.proxyConfig.drainDuration
    commandLine.ipv6 = !pod.instanceIPs.isEmpty && pod.instanceIPs.allSatisfy { $0.contains(":") }
    let document = pod.proxyConfig.document
    if let text = document["fileFlushInterval"]?.stringValue {
      guard let d = GoDuration.parse(text) else {
        throw AgentError(
          .invalidEnvironment,
          "ProxyConfig fileFlushInterval: invalid duration \"\(text)\" (e.g. 1s; \(GoDuration.rangeHint))")
      }
      commandLine.fileFlushInterval = d
    }
    if case .number(let text)? = document["fileFlushMinSizeKb"] {
      let kb = Double(text) ?? .nan
      guard let size = Int(exactly: kb), (0...(1 << 30)).contains(size) else {
        throw AgentError(
          .invalidEnvironment, "ProxyConfig fileFlushMinSizeKb: \(kb) is not a whole number of KiB up to 2^30"
        )
      }
      commandLine.fileFlushMinSizeKB = size
    }
    commandLine.proxyLogLevel = options.proxyLogLevel
    commandLine.proxyComponentLogLevel = options.proxyComponentLogLevel
    commandLine.skipDeprecatedLogs = try flag("ENVOY_SKIP_DEPRECATED_LOGS", default: true)
    commandLine.enableCoreDump = try flag("ISTIO_ENVOY_ENABLE_CORE_DUMP", default: false)
    commandLine.concurrency = pod.proxyConfig.concurrency ?? 0
    if let overridePath = effective["ISTIO_BOOTSTRAP_OVERRIDE"], !overridePath.isEmpty {
      commandLine.configYAML = try bootstrapOverride(
        path: PodMetadata.join(options.root, overridePath), env: effective)
    }

    // The binary.
    let binary: String
    let source: String
    if let path = options.binaryPath, !path.isEmpty {
      (binary, source) = (path, "--binary-path")
    } else if pod.proxyConfig.binaryPath != "/usr/local/bin/envoy" {
      (binary, source) = (pod.proxyConfig.binaryPath, "ProxyConfig binaryPath")
    } else if let found = options.defaultBinaryCandidates.first(where: {
      FileManager.default.isExecutableFile(atPath: $0)
    }) {
      (binary, source) = (found, "default")
    } else {
      (binary, source) = ("/usr/local/bin/envoy", "default")
    }
    let resolvedBinary = PodMetadata.join(options.root, binary)
    guard FileManager.default.isExecutableFile(atPath: resolvedBinary) else {
      throw AgentError(
        .invalidFile, "\(resolvedBinary): proxy binary (\(source)) not found or not executable")
    }
    var userID: UInt32?
    var groupID: UInt32?
    for (flag, id) in [("--proxy-uid", options.proxyUserID), ("--proxy-gid", options.proxyGroupID)]
    where id < -1 || id >= Int(UInt32.max) {
      throw AgentError(.invalidFlag, "\(flag): \(id) is not an id (0 to \(UInt32.max - 1), or -1 to keep)")
    }
    if geteuid() == 0, options.proxyUserID >= 0, options.proxyGroupID >= 0 {
      userID = UInt32(options.proxyUserID)
      groupID = UInt32(options.proxyGroupID)
    }
    var launch = ProxyLaunch(
      binaryPath: resolvedBinary, arguments: commandLine.arguments, environment: effective, userID: userID,
      groupID: groupID)
    launch.trampoline = options.trampoline

    // App probers and metric targets.
    let probers = try AppProbers.parse(effective["ISTIO_KUBE_APP_PROBERS"])
    let localhostProbes = try flag("REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION", default: false)
    let probeTarget = localhostProbes ? "127.0.0.1" : (pod.instanceIPs.first ?? "127.0.0.1")
    let scrapeTargets = try PrometheusScrapeTargets.parse(
      effective["ISTIO_PROMETHEUS_ANNOTATIONS"],
      usedPorts: [
        pod.proxyConfig.proxyAdminPort, pod.proxyConfig.statusPort, generator.envoyStatusPort, metricsPort,
      ])
    let metricsLocalhostOnly = try flag("METRICS_LOCALHOST_ACCESS_ONLY", default: false)
    let identity = try IdentitySettings.resolve(
      pod: pod, sdsSocketPath: generator.sdsSocketPath, root: options.root,
      localCADirectory: options.localCADirectory)
    let xdsUpstream =
      generator.hasControlPlane
      ? try IstiodConnection.resolve(
        address: pod.proxyConfig.discoveryAddress, variable: "ProxyConfig discoveryAddress",
        environment: effective,
        root: options.root)
      : nil

    return SidecarSettings(
      pod: pod, generator: generator, commandLine: commandLine, launch: launch, policy: policy,
      adminPort: pod.proxyConfig.proxyAdminPort, statusPort: pod.proxyConfig.statusPort,
      metricsPort: metricsPort,
      statusAddress: options.statusAddress,
      metricsAddress: metricsLocalhostOnly ? "127.0.0.1" : options.statusAddress,
      metricsLocalhostOnly: metricsLocalhostOnly,
      mergeProxyStats: try flag("PILOT_AGENT_MERGE_ENVOY_STATS", default: true), probers: probers,
      probeTarget: probeTarget, scrapeTargets: scrapeTargets, identity: identity, xdsUpstream: xdsUpstream,
      root: options.root)
  }

  /// ISTIO_BOOTSTRAP_OVERRIDE: a YAML or JSON file, `$(HOST_IP)` substituted, passed as JSON.
  static func bootstrapOverride(path: String, env: [String: String]) throws(AgentError) -> String {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw AgentError(.invalidFile, "ISTIO_BOOTSTRAP_OVERRIDE \(path): cannot read", cause: error)
    }
    let substituted = text.replacingOccurrences(of: "$(HOST_IP)", with: env["HOST_IP"] ?? "")
    do {
      return try JSONValue.parse(jsonOrYAML: substituted).jsonText(pretty: false, escapingHTML: false)
    } catch {
      throw AgentError(.invalidFile, "ISTIO_BOOTSTRAP_OVERRIDE \(path): malformed YAML or JSON", cause: error)
    }
  }
}
