// libFuzzer target: a bootstrap as `pilotfish-proxy --mode validate` reads it (hack/fuzz.sh builds and
// runs it): decoding (JSON, YAML or either; proto3 JSON mapping checked field by field), the semantic
// validator, and the models the proxy builds from it (listeners, filter chains, HTTP connection
// managers, routes, clusters). Any outcome but a clean value or a thrown error is a finding.
//
// Input: byte 0 picks the format (bits 0-1), allow-unknown-fields (bit 2) and require-admin (bit 3); the
// rest is the document. A NUL byte in it splits off a `--config-yaml` overlay merged over the document.
internal import EnvoyAPI
internal import ProxyCore
internal import ProxyServer
internal import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzBootstrap(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  guard count > 0 else { return 0 }
  let data = Array(UnsafeBufferPointer(start: pointer, count: count))
  let control = data[0]
  let formats: [BootstrapLoader.Format] = [.json, .yaml, .auto, .auto]
  let format = formats[Int(control & 3)]
  let allowUnknown = control & 4 != 0
  let rest = data[1...]
  let document: ArraySlice<UInt8>
  var overlay: ArraySlice<UInt8>?
  if let nul = rest.firstIndex(of: 0) {
    document = rest[..<nul]
    overlay = rest[(nul + 1)...]
  } else {
    document = rest
  }

  var bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap
  do {
    bootstrap = try BootstrapLoader.decode(
      String(decoding: document, as: UTF8.self), format: format, source: "fuzz.json",
      allowUnknownFields: allowUnknown
    ).bootstrap
    if let overlay {
      let top = try BootstrapLoader.decode(
        String(decoding: overlay, as: UTF8.self), format: .yaml, source: BootstrapLoader.configYAMLSource,
        allowUnknownFields: allowUnknown)
      let bytes: [UInt8] = try top.bootstrap.serializedBytes()
      try bootstrap.merge(serializedBytes: bytes)
    }
    try BootstrapValidator(source: "fuzz.json", requireAdmin: control & 8 != 0).validate(bootstrap)
  } catch {
    _ = "\(error)"
    return 0
  }
  do {
    let stats = try StatsStore(config: StatsConfig(bootstrap.statsConfig, path: "stats_config"))
    let resources = try StaticResources(
      bootstrap, registry: ProxyServer.filterRegistry(),
      context: FilterBuildContext(stats: stats, accessLog: AccessLogSink(validateOnly: true)))
    _ = resources.warnings.map { "\($0)" }
  } catch {
    _ = "\(error)"
  }
  return 0
}
