// libFuzzer target: `pilotfish istio-iptables` flags and environment (hack/fuzz.sh builds and runs it):
// `CaptureSettings.resolve` (ports, uids, groups, CIDRs, interfaces, marks, durations, backends), then the
// rule set built from the result and rendered for nftables and iptables-restore, as `--dry-run` does.
// Any outcome but settings or a thrown error naming the flag is a finding.
//
// Input: lines `name=value`. A name that is a long flag (`envoy-port`) or a short one (`p`) sets that
// flag; any other name is an environment variable (`DUAL_STACK`, `ISTIO_META_DNS_CAPTURE` …). The host
// is fixed: IPv6 on, one address of each family, a nameserver and NET_ADMIN.
@testable import Interception

let shortFlags: [Character: CaptureFlag] = Dictionary(
  CaptureFlag.allCases.compactMap { flag in flag.short.map { ($0, flag) } }, uniquingKeysWith: { a, _ in a })

let host = HostFacts(
  kernelIPv6: true, addresses: [CIDR("10.1.2.3/32")!, CIDR("fd00::3/128")!],
  nameservers: [CIDR("10.96.0.10/32")!], hasNetAdmin: true, defaultGateways: [CIDR("10.1.2.1/32")!])

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzCaptureFlags(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
  var flags: [CaptureFlag: String] = [:]
  var environment: [String: String] = [:]
  for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
    let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
    let name = String(parts[0])
    let value = parts.count > 1 ? String(parts[1]) : "true"
    if let flag = CaptureFlag(rawValue: name) {
      flags[flag] = value
    } else if name.count == 1, let flag = shortFlags[name.first!] {
      flags[flag] = value
    } else {
      environment[name] = value
    }
  }
  do {
    let settings = try CaptureSettings.resolve(flags: flags, environment: environment, host: host)
    let ruleset = RuleBuilder.build(settings.config)
    _ = NftRenderer.transaction(ruleset)
    for family in ruleset.families { _ = IptablesRenderer.payload(ruleset, family: family) }
    _ = InterceptionRunner.routing(settings.config, families: ruleset.families)
  } catch {
    _ = error.message
  }
  return 0
}
