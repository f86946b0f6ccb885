import Foundation
import TestSupport
import Testing

@testable import Agent

/// ISTIO_BOOTSTRAP_OVERRIDE: read, `$(HOST_IP)` substituted, passed to the proxy as `--config-yaml`, and
/// merged over the generated bootstrap by the real `pilotfish-proxy`.
@Suite("ISTIO_BOOTSTRAP_OVERRIDE")
struct BootstrapOverrideTests {
  static func override(clusterType: String) -> String {
    """
    static_resources:
      clusters:
      - name: extra-from-override
        connect_timeout: 1s
        type: \(clusterType)
        load_assignment:
          cluster_name: extra-from-override
          endpoints:
          - lb_endpoints:
            - endpoint: {address: {socket_address: {address: "$(HOST_IP)", port_value: 9999}}}
    """
  }

  @Test func substitutedConvertedPassedAndMergedByTheProxy() async throws {
    let sidecar = try SidecarUnderTest(
      environment: ["ISTIO_BOOTSTRAP_OVERRIDE": "./override.yaml", "HOST_IP": "10.9.8.7"], start: false)
    defer { sidecar.cleanUp() }
    try sidecar.root.write("override.yaml", Self.override(clusterType: "STATIC"))
    try sidecar.process.run()
    #expect(await eventually { sidecar.record.contains { $0.hasPrefix("start ") } }, "\(sidecar.stderr)")
    let start = try #require(sidecar.record.first { $0.hasPrefix("start ") })
    let args = try #require(
      try JSONSerialization.jsonObject(with: Data(start.split(separator: "args=", maxSplits: 1)[1].utf8))
        as? [String])
    let index = try #require(args.firstIndex(of: "--config-yaml"))
    let configYAML = args[index + 1]
    #expect(configYAML.contains(#""address":"10.9.8.7""#), "\(configYAML)")
    #expect(!configYAML.contains("$(HOST_IP)"))

    // The real proxy merges it over the generated bootstrap: a valid override validates, a broken one fails
    // with the merged field's path.
    let proxy = try Binaries.pilotfish().replacingOccurrences(of: "/pilotfish", with: "/pilotfish-proxy")
    let bootstrap = sidecar.root.path + "/etc/istio/proxy/envoy-rev.json"
    let good = try await onThread {
      try Binaries.run(proxy, ["--mode", "validate", "-c", bootstrap, "--config-yaml", configYAML])
    }
    #expect(good.status == 0, "\(good.output)")
    let broken = try SidecarSettings.bootstrapOverride(
      path: try writeTemporary(Self.override(clusterType: "NOT_A_TYPE")), env: ["HOST_IP": "10.9.8.7"])
    let bad = try await onThread {
      try Binaries.run(proxy, ["--mode", "validate", "-c", bootstrap, "--config-yaml", broken])
    }
    #expect(bad.status == 1)
    #expect(bad.output.contains("NOT_A_TYPE"), "\(bad.output)")
  }

  @Test func malformedFileNamesTheVariableAndPath() throws {
    let path = try writeTemporary("static_resources: [unclosed")
    #expect {
      _ = try SidecarSettings.bootstrapOverride(path: path, env: [:])
    } throws: {
      ($0 as? AgentError)?.message == "ISTIO_BOOTSTRAP_OVERRIDE \(path): malformed YAML or JSON"
    }
  }

  func writeTemporary(_ text: String) throws -> String {
    let path = NSTemporaryDirectory() + "pf-override-" + UUID().uuidString + ".yaml"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }
}
