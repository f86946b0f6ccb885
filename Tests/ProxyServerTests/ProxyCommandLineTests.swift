import Foundation
import TestSupport
import Testing

/// Runs the built `pilotfish-proxy` on bootstraps written to a temporary directory, the way pilot-agent
/// runs Envoy, and checks exit statuses and the exact texts printed.
@Suite struct ProxyCommandLineTests {
  struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static func binary() throws -> URL {
    var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
    directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    directories.append(packageRoot.appendingPathComponent(".build/debug"))
    for directory in directories {
      let candidate = directory.appendingPathComponent("pilotfish-proxy")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw CocoaError(
      .fileNoSuchFile, userInfo: [NSFilePathErrorKey: "pilotfish-proxy next to the test bundle"])
  }

  static func run(_ arguments: [String]) throws -> Run {
    try runTool(try binary().path, arguments)
  }

  /// Runs another program (curl, promtool) and collects its output (bounded: a hung child is killed and
  /// reported as status -1; a child killed by a signal reports 128 + the signal, never a plain exit code).
  static func runTool(_ path: String, _ arguments: [String]) throws -> Run {
    let child = try ChildProcess.run(path, arguments, timeout: .seconds(60))
    let status: Int32
    switch child.termination {
    case .exited(let code): status = code
    case .signaled(let signal): status = 128 + signal
    case .timedOut: status = -1
    }
    return Run(status: status, stdout: child.stdoutText, stderr: child.stderrText)
  }

  /// Writes `text` as `name` in a fresh temporary directory and returns its path.
  static func write(_ text: String, as name: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pf-proxy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent(name)
    try text.write(to: file, atomically: true, encoding: .utf8)
    return file.path
  }

  static func validate(_ text: String, as name: String, _ extra: [String] = []) throws -> (String, Run) {
    let path = try write(text, as: name)
    return (path, try run(["-c", path, "--mode", "validate"] + extra))
  }

  @Test func istioSidecarBootstrapValidates() throws {
    let (path, result) = try Self.validate(Fixtures.istioSidecarJSON, as: "envoy-rev.json")
    #expect(result.stderr == "")
    #expect(result.stdout == "configuration '\(path)' OK\n")
    #expect(result.status == 0)
  }

  @Test func envoyExampleYAMLValidates() throws {
    let (path, result) = try Self.validate(Fixtures.envoyExampleYAML, as: "envoy.yaml")
    #expect(result.stdout == "configuration '\(path)' OK\n")
    #expect(result.status == 0)
  }

  @Test func unknownExtensionIsTriedAsJSONThenYAML() throws {
    let (_, json) = try Self.validate(Fixtures.istioSidecarJSON, as: "bootstrap.conf")
    #expect(json.status == 0)
    let (_, yaml) = try Self.validate(Fixtures.envoyExampleYAML, as: "bootstrap.conf")
    #expect(yaml.status == 0)
  }

  @Test func everyFlagPilotAgentPassesIsAccepted() throws {
    let path = try Self.write(Fixtures.istioSidecarJSON, as: "envoy-rev.json")
    let result = try Self.run([
      "-c", path, "--drain-time-s", "45", "--drain-strategy", "immediate", "--local-address-ip-version", "v4",
      "--file-flush-interval-msec", "1000", "--disable-hot-restart", "--allow-unknown-static-fields",
      "--file-flush-min-size-kb", "64", "-l", "warning", "--component-log-level", "misc:error,upstream:debug",
      "--skip-deprecated-logs", "--enable-core-dump", "--config-yaml", #"{"node":{"cluster":"x"}}"#,
      "--concurrency", "2", "--parent-shutdown-time-s", "60", "--restart-epoch", "0", "--log-format", "%v",
      "--log-format-escaped", "--service-cluster", "c", "--service-node", "n", "--service-zone", "z",
      "--base-id", "3", "--use-dynamic-base-id", "--base-id-path", "/tmp/x",
      "--skip-hot-restart-on-no-parent",
      "--reject-unknown-dynamic-fields", "--mode", "validate",
    ])
    #expect(result.stderr == "")
    #expect(result.status == 0)
  }

  @Test func badFlagValuesNameTheFlag() throws {
    let path = try Self.write(Fixtures.envoyExampleYAML, as: "envoy.yaml")
    for (flag, value) in [
      ("--drain-strategy", "slow"), ("--mode", "run"), ("--local-address-ip-version", "v5"),
      ("--concurrency", "-1"), ("--log-level", "loud"), ("--component-log-level", "upstream"),
    ] {
      let result = try Self.run(["-c", path, flag, value])
      #expect(result.status == 1, "\(flag)")
      #expect(result.stderr.contains(flag), "\(flag): \(result.stderr)")
    }
  }

  @Test func unknownFieldIsRejectedWithItsPath() throws {
    let text = Fixtures.envoyExampleYAML.replacingOccurrences(
      of: "stat_prefix: destination", with: "stat_prefix: destination\n          bogus: 1")
    let (path, result) = try Self.validate(text, as: "envoy.yaml")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): static_resources.listeners[0].filter_chains[0].filters[0]\
        .typed_config: unknown field "bogus" in envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy

        """)
    #expect(result.stdout == "")
  }

  @Test func unknownFieldIsAWarningWhenAllowed() throws {
    let text = Fixtures.istioSidecarJSON.replacingOccurrences(
      of: #""stat_prefix": "agent","#, with: #""stat_prefix": "agent", "bogus": true,"#)
    let (path, result) = try Self.validate(text, as: "envoy-rev.json", ["--allow-unknown-static-fields"])
    #expect(result.status == 0)
    #expect(result.stdout == "configuration '\(path)' OK\n")
    #expect(
      result.stderr.contains(#"ignoring unknown static field: \#(path): static_resources.listeners[0]"#))
    #expect(
      result.stderr.contains(
        #"unknown field "bogus" in envoy.extensions.filters.network.http_connection_manager"#))
  }

  @Test func unknownTypedConfigType() throws {
    let text = Fixtures.istioSidecarJSON.replacingOccurrences(
      of: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
      with: "type.googleapis.com/foo.Bar")
    let (path, result) = try Self.validate(text, as: "envoy-rev.json")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): static_resources.listeners[0].filter_chains[0].filters[0]\
        .typed_config.http_filters[0]: unknown typed_config type "type.googleapis.com/foo.Bar"

        """)
  }

  @Test func duplicateListenerName() throws {
    let text = Fixtures.envoyExampleYAML.replacingOccurrences(
      of: "  clusters:\n",
      with: """
          - name: listener_0
            address:
              socket_address: { address: 0.0.0.0, port_value: 10001 }
          clusters:

        """)
    let (path, result) = try Self.validate(text, as: "envoy.yaml")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): static_resources.listeners[1]: \
        duplicate listener name "listener_0"

        """)
  }

  @Test func unknownClusterReference() throws {
    let text = Fixtures.envoyExampleYAML.replacingOccurrences(
      of: "cluster: cluster_0", with: "cluster: nowhere")
    let (path, result) = try Self.validate(text, as: "envoy.yaml")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): static_resources.listeners[0].filter_chains[0].filters[0]\
        .typed_config.cluster: unknown cluster "nowhere"

        """)
  }

  @Test func routeToClusterCDSMayProvideIsAccepted() throws {
    let text = Fixtures.istioSidecarJSON.replacingOccurrences(
      of: #""route": {"cluster": "agent"}"#, with: #""route": {"cluster": "outbound|80||reviews"}"#)
    let (_, result) = try Self.validate(text, as: "envoy-rev.json")
    #expect(result.status == 0)
  }

  @Test func badDuration() throws {
    let text = Fixtures.envoyExampleYAML.replacingOccurrences(
      of: "idle_timeout: 30s", with: "idle_timeout: 30 seconds")
    let (path, result) = try Self.validate(text, as: "envoy.yaml")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): static_resources.listeners[0].filter_chains[0].filters[0]\
        .typed_config.idle_timeout: invalid value "30 seconds" (not a duration such as "1.5s")

        """)
  }

  @Test func yamlSyntaxError() throws {
    let (path, result) = try Self.validate("admin:\n  address: [\n", as: "envoy.yaml")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): invalid YAML at line 3, column 1: \
        while parsing a flow node: did not find expected node content

        """)
  }

  @Test func jsonSyntaxError() throws {
    let (path, result) = try Self.validate("{\"admin\": {,}}", as: "envoy.json")
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): invalid JSON at line 1, column 12: expected a string key

        """)
  }

  @Test func missingFile() throws {
    let result = try Self.run(["-c", "/nonexistent/envoy.yaml", "--mode", "validate"])
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '/nonexistent/envoy.yaml': /nonexistent/envoy.yaml: cannot read the file: \
        No such file or directory

        """)
  }

  @Test func serveRequiresAnAdminAddress() throws {
    let text = Fixtures.envoyExampleYAML.components(separatedBy: "admin:")[0]
    let path = try Self.write(text, as: "envoy.yaml")
    let result = try Self.run(["-c", path])
    #expect(result.status == 1)
    #expect(
      result.stderr == """
        error initializing configuration '\(path)': \(path): admin.address: admin needs a socket_address or pipe address

        """)
    let validated = try Self.run(["-c", path, "--mode", "validate"])
    #expect(validated.status == 0)
  }
}
