internal import EnvoyAPI
internal import Interception
internal import ProxyCore
internal import SwiftProtobuf

// libFuzzer target: every duration parser Pilotfish has (hack/fuzz.sh builds and runs it):
// - Go durations in the agent (`GoDuration.parse`: ProxyConfig, pilot-agent flags and environment),
//   also through the ProxyConfig field reader as a `drainDuration` the way PROXY_CONFIG carries it;
// - proto3 JSON durations ("1.5s") decoded into `google.protobuf.Duration`, then turned into the proxy's
//   `TimeAmount` by `DurationConversion.timeAmount` (every timeout in listeners, clusters, routes, HCM);
// - istio-iptables' `--probe-timeout`.
// A parser must return a value or nil/throw; a trap (overflow, bad conversion) is a finding.
//
// Input: the duration text.
@testable import Agent

let host = HostFacts(kernelIPv6: false, addresses: [], nameservers: [], hasNetAdmin: false)

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzDurations(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)

  if let d = GoDuration.parse(text) { _ = GoDuration.format(d) }
  _ = try? FieldReader(
    object: ["drainDuration": .string(text)], source: "PROXY_CONFIG", code: .invalidEnvironment
  )
  .duration("drainDuration")

  // The text as a JSON string literal (a StringValue's JSON form), then as a proto3 JSON Duration.
  guard let quoted = try? Google_Protobuf_StringValue(text).jsonString() else { return 0 }
  if let proto = try? Google_Protobuf_Duration(jsonString: quoted) {
    _ = try? DurationConversion.timeAmount(proto, path: "timeout")
  }

  _ = try? CaptureSettings.resolve(
    flags: [.probeTimeout: text, .proxyUID: "1337"], environment: [:], host: host)
  return 0
}
