import Agent
import ArgumentParser
import Foundation
import Logging

/// `pilotfish proxy sidecar`: pilot-agent's `proxy` command — bootstrap, proxy supervision, status server
/// (15020), merged metrics (15090), graceful drain on SIGTERM.
struct Proxy: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "proxy",
    abstract: "Run the sidecar agent: write the bootstrap, supervise the proxy, serve status and metrics.",
    discussion: """
      Accepts pilot-agent's flags and environment (POD_NAME, POD_NAMESPACE, INSTANCE_IP, PROXY_CONFIG, \
      ISTIO_META_*, ISTIO_KUBE_APP_PROBERS, ISTIO_PROMETHEUS_ANNOTATIONS, EXIT_ON_ZERO_ACTIVE_CONNECTIONS, \
      MINIMUM_DRAIN_DURATION, ...); flags pilot-agent knows but Pilotfish does not use are accepted and \
      ignored. Exit codes: 0 after SIGTERM/SIGINT or POST /quitquitquit; 1 for bad input (the message names \
      the variable, file or flag) or when the proxy keeps exiting beyond --max-proxy-restarts.
      """
  )

  @Argument(help: "Proxy type; only sidecar is supported.")
  var type = "sidecar"

  // pilot-agent's flags.
  @Option(name: .customLong("domain"), help: "DNS domain (default <namespace>.svc.cluster.local).")
  var domain: String?
  @Option(name: .customLong("meshConfig"), help: "Mesh config file, read only if it exists.")
  var meshConfig = "./etc/istio/config/mesh"
  @Option(name: .customLong("serviceCluster"), help: "Deprecated service cluster.")
  var serviceCluster = "istio-proxy"
  @Option(name: .customLong("proxyLogLevel"), help: "Proxy log level, `level[,component:level]`.")
  var proxyLogLevel = "warning"
  @Option(name: .customLong("proxyComponentLogLevel"), help: "Proxy component log levels.")
  var proxyComponentLogLevel = ""
  @Option(name: .customLong("concurrency"), help: "Proxy worker threads (legacy; ProxyConfig wins).")
  var concurrency = 0
  @Option(name: .customLong("templateFile"), help: "Custom Go bootstrap template: not supported (an error); use ISTIO_BOOTSTRAP_OVERRIDE.")
  var templateFile = ""
  @Option(name: .customLong("outlierLogPath"), help: "Outlier detection log path (node metadata).")
  var outlierLogPath = ""
  @Option(name: .customLong("stsPort"), help: "STS server port (not supported; ignored).")
  var stsPort = 0
  @Option(name: .customLong("tokenManagerPlugin"), help: "Token manager plugin (ignored).")
  var tokenManagerPlugin = ""
  @Option(
    name: .customLong("log_output_level"), help: "Agent log level, `scope:level,...` (pilot-agent form).")
  var logOutputLevel = "default:info"

  // Pilotfish's flags.
  @Option(
    name: .customLong("pod-metadata"), help: "A Kubernetes Pod object (JSON) instead of the environment.")
  var podMetadata: String?
  @Flag(
    name: .customLong("no-control-plane"),
    help: "No istiod: serve the empty mesh's sidecar config statically (implied by --pod-metadata).")
  var noControlPlane = false
  @Option(
    name: .customLong("config-path"), help: "Directory of envoy-rev.json (default ProxyConfig configPath).")
  var configPath: String?
  @Option(
    name: .customLong("binary-path"),
    help: "Proxy binary (default ProxyConfig binaryPath, else pilotfish-proxy beside pilotfish, else envoy).")
  var binaryPath: String?
  @Option(
    name: .customLong("status-port"), help: "Status server port (default ProxyConfig statusPort, 15020).")
  var statusPort: Int?
  @Option(
    name: .customLong("metrics-port"), help: "Merged metrics port (default ENVOY_PROMETHEUS_PORT, 15090).")
  var metricsPort: Int?
  @Option(name: .customLong("listen-address"), help: "Address of the status and metrics servers.")
  var listenAddress = "0.0.0.0"
  @Option(
    name: .customLong("max-proxy-restarts"), help: "Unexpected proxy exits in a row tolerated (default 10).")
  var maxProxyRestarts = 10
  @Option(
    name: .customLong("restart-backoff-ms"), help: "First restart delay, doubled each time (default 500).")
  var restartBackoffMillis = 500
  @Option(name: .customLong("max-restart-backoff-ms"), help: "Longest restart delay (default 30000).")
  var maxRestartBackoffMillis = 30_000
  @Option(name: .customLong("stop-grace-ms"), help: "SIGTERM to SIGKILL delay when stopping the proxy.")
  var stopGraceMillis = 5_000
  @Option(
    name: .customLong("local-ca-dir"),
    help: "State directory of the local CA used without a control plane (also PILOTFISH_LOCAL_CA_DIR).")
  var localCADirectory: String?
  @Option(name: .customLong("proxy-uid"), help: "uid the proxy runs as when the agent is root (-1: keep).")
  var proxyUID = 1337
  @Option(name: .customLong("proxy-gid"), help: "gid the proxy runs as when the agent is root (-1: keep).")
  var proxyGID = 1337
  @Option(
    name: .customLong("log-level"),
    help: "trace, debug, info, notice, warning, error (overrides --log_output_level).")
  var logLevel: String?

  /// Any other pilot-agent flag (`--profiling=false`, `--log_as_json`, ...): accepted and ignored.
  @Argument(parsing: .allUnrecognized)
  var ignored: [String] = []

  func run() throws {
    SignalMask.unblockTerminationSignals()
    try runAsyncThrowing { try await serve() }
  }

  private func serve() async throws {
    guard type == "sidecar" else {
      throw fail("proxy type \"\(type)\" is not supported (only sidecar)")
    }
    let logger = try CommandLogging.start(
      logLevel: logLevel ?? Self.level(fromOutputLevel: logOutputLevel), label: "pilotfish.agent")
    if !ignored.isEmpty {
      logger.info("ignoring pilot-agent flags Pilotfish does not use: \(ignored.joined(separator: " "))")
    }
    var options = SidecarOptions(environment: ProcessInfo.processInfo.environment)
    options.podMetadataPath = podMetadata
    options.noControlPlane = noControlPlane
    options.meshConfigPath = meshConfig
    options.domain = domain
    options.serviceCluster = serviceCluster
    options.proxyLogLevel = proxyLogLevel
    options.proxyComponentLogLevel = proxyComponentLogLevel
    options.concurrency = concurrency
    options.outlierLogPath = outlierLogPath
    options.templateFile = templateFile
    options.configPath = configPath
    options.binaryPath = binaryPath
    let executableDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
      .deletingLastPathComponent()
    options.defaultBinaryCandidates = [executableDirectory.appendingPathComponent("pilotfish-proxy").path]
    options.trampoline = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    options.statusPort = statusPort
    options.metricsPort = metricsPort
    options.localCADirectory = localCADirectory
    options.statusAddress = listenAddress
    options.proxyUserID = proxyUID
    options.proxyGroupID = proxyGID
    options.policy.maxRestarts = maxProxyRestarts
    options.policy.initialBackoff = .milliseconds(max(1, restartBackoffMillis))
    options.policy.maxBackoff = .milliseconds(max(1, maxRestartBackoffMillis))
    options.policy.stopGrace = .milliseconds(max(0, stopGraceMillis))
    let settings: SidecarSettings
    do {
      settings = try SidecarSettings.resolve(options)
    } catch {
      throw fail(error.description)
    }
    do {
      try await SidecarAgent(settings: settings, logger: logger).run()
    } catch let error as AgentError {
      throw fail(error.description)
    } catch {
      throw fail("\(error)")
    }
  }

  /// `default:info,ads:debug` → the default scope's level (Istio's `none` maps to error).
  static func level(fromOutputLevel text: String) -> String {
    for part in text.split(separator: ",") {
      let pieces = part.split(separator: ":")
      if pieces.count == 2, pieces[0] == "default" {
        let level = String(pieces[1]).lowercased()
        return ["none": "error", "fatal": "critical", "warn": "warning"][level] ?? level
      }
      if pieces.count == 1 { return String(pieces[0]).lowercased() }
    }
    return "info"
  }

  private func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("pilotfish proxy: error: \(message)\n".utf8))
    return ExitCode.failure
  }
}

/// `pilotfish __exec-as --parent-pid <pid> [--uid <uid> --gid <gid>] <binary> [args...]`: internal; how the
/// agent starts the proxy (as 1337 when it is root), tied to the agent's life (see `PrivilegeDrop`).
struct ExecAs: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: PrivilegeDrop.subcommand,
    abstract: "Internal: drop to uid/gid, die with the parent, and exec a program.", shouldDisplay: false)

  @Option(name: .customLong("parent-pid")) var parentPID: Int32
  @Option(name: .customLong("uid")) var uid: UInt32?
  @Option(name: .customLong("gid")) var gid: UInt32?
  @Argument var binary: String
  @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

  func run() throws {
    let ids: (uid: UInt32, gid: UInt32)? = uid.map { (uid: $0, gid: gid ?? $0) }
    let error = PrivilegeDrop.exec(ids: ids, parentPID: parentPID, binary: binary, arguments: arguments)
    FileHandle.standardError.write(Data("pilotfish \(PrivilegeDrop.subcommand): error: \(error)\n".utf8))
    throw ExitCode(127)
  }
}
