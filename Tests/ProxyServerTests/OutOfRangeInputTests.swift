import Foundation
import Testing

/// Numbers and durations that do not fit the proxy's fixed-width integers, given to the built
/// `pilotfish-proxy`: each must end in exit status 1 with a message naming the field or flag — never a
/// signal (before the checks, most of these trapped on an arithmetic overflow).
@Suite struct OutOfRangeInputTests {
  typealias Tool = ProxyCommandLineTests

  /// (what is changed, the text replaced in the example bootstrap, its replacement, the path in the error)
  static let bootstraps: [(String, String, String, String)] = [
    (
      "connect_timeout", "connect_timeout: 0.25s", "connect_timeout: 10000000000s",
      "static_resources.clusters[0].connect_timeout"
    ),
    (
      "connect_timeout at protobuf's limit", "connect_timeout: 0.25s", "connect_timeout: 315576000000s",
      "static_resources.clusters[0].connect_timeout"
    ),
    (
      "tcp_proxy idle_timeout", "idle_timeout: 30s", "idle_timeout: 9300000000s",
      "idle_timeout"
    ),
    (
      "listener port_value", "port_value: 10000", "port_value: 70000",
      "port_value"
    ),
    (
      "admin port_value", "port_value: 9901", "port_value: 4294967295",
      "admin.address.socket_address.port_value"
    ),
    (
      "endpoint port_value", "port_value: 1234", "port_value: 65536",
      "port_value"
    ),
    (
      "cluster HttpProtocolOptions idle_timeout", "connect_timeout: 0.25s",
      """
      connect_timeout: 0.25s
          typed_extension_protocol_options:
            envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
              "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
              common_http_protocol_options: { idle_timeout: 9999999999s }
              explicit_http_config: { http_protocol_options: {} }
      """,
      "common_http_protocol_options.idle_timeout"
    ),
  ]

  @Test(arguments: 0..<bootstraps.count)
  func bootstrapValueIsRefusedWithItsPath(index: Int) throws {
    let (what, old, new, path) = Self.bootstraps[index]
    let text = Fixtures.envoyExampleYAML.replacingOccurrences(of: old, with: new)
    #expect(text != Fixtures.envoyExampleYAML, "\(what): fixture not changed")
    for mode in [["--mode", "validate"], ["--mode", "serve"]] {
      let file = try Tool.write(text, as: "envoy.yaml")
      let result = try Tool.run(["-c", file] + mode)
      #expect(result.status == 1, "\(what) \(mode): status \(result.status), \(result.stderr)")
      #expect(result.stderr.contains(path), "\(what) \(mode): \(result.stderr)")
    }
  }

  @Test(arguments: [
    ("--drain-time-s", "18446744073709551615"),
    ("--drain-time-s", "9300000000"),
    ("--parent-shutdown-time-s", "18446744073709551615"),
    ("--file-flush-interval-msec", "18446744073709551615"),
    ("--concurrency", "4294967295"),
    ("--drain-time-s", "-1"),
    ("--drain-time-s", "inf"),
  ])
  func flagValueIsRefusedWithTheFlag(flag: String, value: String) throws {
    let file = try Tool.write(Fixtures.envoyExampleYAML, as: "envoy.yaml")
    for mode in ["validate", "serve"] {
      let result = try Tool.run(["-c", file, "--mode", mode, flag, value])
      #expect(result.status == 1, "\(flag) \(value) \(mode): status \(result.status), \(result.stderr)")
      #expect(result.stderr.contains(flag), "\(flag) \(value): \(result.stderr)")
    }
  }
}
