internal import Testing

@testable internal import Interception

/// Flag and environment resolution: Istio's precedence and defaults, and one precise error per bad input.
@Suite struct CaptureSettingsTests {
  let host = HostFacts(kernelIPv6: true, addresses: [], nameservers: [], hasNetAdmin: true)

  func resolve(_ flags: [CaptureFlag: String] = [:], env: [String: String] = [:]) throws -> CaptureSettings {
    try CaptureSettings.resolve(flags: flags, environment: env, host: host)
  }

  @Test func defaultsAreIstios() throws {
    let s = try resolve(env: ["ENVOY_USER": "pilotfish-no-such-user"])
    #expect(s.config.proxyPort == 15001)
    #expect(s.config.inboundCapturePort == 15006)
    #expect(s.config.inboundTunnelPort == 15008)
    #expect(s.config.proxyUIDs == [1337])
    #expect(s.config.proxyGIDs == [1337])
    #expect(s.config.inboundMode == .redirect)
    #expect(s.config.inboundPorts == .none)
    #expect(s.config.outboundRanges == .none)
    #expect(s.config.tproxyMark == 1337)
    #expect(s.config.tproxyRouteTable == 133)
    #expect(s.config.families == [.v4])
    #expect(s.probePort == 15002)
    #expect(s.probeTimeout == .seconds(5))
    #expect(s.backend == .auto)
  }

  @Test func flagBeatsEnvironmentBeatsDefault() throws {
    let env = ["INBOUND_CAPTURE_PORT": "16006", "ISTIO_INBOUND_PORTS": "80,443", "ISTIO_DUAL_STACK": "true"]
    let s = try resolve([.inboundCapturePort: "17006"], env: env)
    #expect(s.config.inboundCapturePort == 17006)
    #expect(s.config.inboundPorts == .ports([80, 443]))
    #expect(s.config.families == [.v4, .v6])
    #expect(try resolve(env: ["INVALID_DROP": "1"]).config.dropInvalid)
    #expect(try resolve(env: ["ISTIO_META_DNS_CAPTURE": "true"]).config.redirectDNS)
    #expect(try resolve(env: ["NATIVE_NFTABLES": "true"]).backend == .nftables)
    #expect(try resolve([.probeTimeout: "750ms"]).probeTimeout == .milliseconds(750))
  }

  @Test func ipv6DisabledKernelMeansIPv4WithANotice() throws {
    let s = try CaptureSettings.resolve(
      flags: [.dualStack: "true"], environment: [:],
      host: HostFacts(kernelIPv6: false, addresses: [], nameservers: [], hasNetAdmin: true))
    #expect(s.config.families == [.v4])
    #expect(s.notices.contains { $0.contains("IPv6 is disabled") })
  }

  @Test func anIPv6PodGetsIPv6Rules() throws {
    let s = try CaptureSettings.resolve(
      flags: [:], environment: [:],
      host: HostFacts(kernelIPv6: true, addresses: [CIDR("fd00::5")!], nameservers: [], hasNetAdmin: true))
    #expect(s.config.families == [.v4, .v6])
  }

  @Test(arguments: [
    (
      [CaptureFlag.serviceExcludeCIDR: "10.0.0.0/33"], [String: String](),
      "invalid value \"10.0.0.0/33\" for -x/--istio-service-exclude-cidr: \"10.0.0.0/33\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)"
    ),
    (
      [.serviceCIDR: "10.0.0.0/8,bogus"], [:],
      "invalid value \"10.0.0.0/8,bogus\" for -i/--istio-service-cidr: \"bogus\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)"
    ),
    (
      [.interceptionMode: "TPROXYY"], [:],
      "invalid value \"TPROXYY\" for -m/--istio-inbound-interception-mode: unknown interception mode; use REDIRECT or TPROXY"
    ),
    (
      [.inboundPorts: "80,,90"], [:],
      "invalid value \"80,,90\" for -b/--istio-inbound-ports: \"\" is not a port number (1-65535)"
    ),
    (
      [:], ["ISTIO_LOCAL_EXCLUDE_PORTS": "15090,70000"],
      "invalid value \"15090,70000\" for ISTIO_LOCAL_EXCLUDE_PORTS (environment, for --istio-local-exclude-ports): \"70000\" is not a port number (1-65535)"
    ),
    ([.envoyPort: "0"], [:], "invalid value \"0\" for -p/--envoy-port: not a port number (1-65535)"),
    (
      [.serviceExcludeCIDR: "*"], [:],
      "invalid value \"*\" for -x/--istio-service-exclude-cidr: '*' cannot be excluded; leave -i empty to capture nothing"
    ),
    (
      [.backend: "ebpf"], [:],
      "invalid value \"ebpf\" for --backend: use auto, nftables, iptables-legacy or iptables-nft"
    ),
    (
      [.proxyUID: "1337,abc"], [:],
      "invalid value \"1337,abc\" for -u/--proxy-uid: \"abc\" is not a numeric id"
    ),
    (
      [.excludeInterfaces: "eth0,bad name"], [:],
      "invalid value \"eth0,bad name\" for -c/--istio-exclude-interfaces: \"bad name\" is not an interface name"
    ),
    (
      [.tproxyRouteTable: "254"], [:],
      "invalid value \"254\" for -r/--istio-inbound-tproxy-route-table: tables 0, 253 (default), 254 (main) and 255 (local) are reserved"
    ),
    (
      [.ipv4LoopbackCIDR: "10.0.0.0/8"], [:],
      "invalid value \"10.0.0.0/8\" for --ipv4-loopback-cidr: must be an IPv4 range inside 127.0.0.0/8"
    ),
    ([.dryRun: "maybe"], [:], "invalid value \"maybe\" for -n/--dry-run: expected true or false"),
    (
      [.probeTimeout: "soon"], [:],
      "invalid value \"soon\" for --probe-timeout: not a duration (e.g. 5s, 500ms)"
    ),
    // Crashed the Durations fuzz target (hack/fuzz.sh): values past Int64 milliseconds trapped instead of failing.
    (
      [.probeTimeout: "inf"], [:],
      "invalid value \"inf\" for --probe-timeout: not a duration (e.g. 5s, 500ms)"
    ),
    (
      [.probeTimeout: "1e300s"], [:],
      "invalid value \"1e300s\" for --probe-timeout: longer than 86400s"
    ),
  ])
  func badInputNamesTheFlagAndValue(flags: [CaptureFlag: String], env: [String: String], message: String) {
    #expect(throws: InterceptionError(.invalidArgument, message)) {
      try CaptureSettings.resolve(flags: flags, environment: env, host: host)
    }
  }

  @Test func cidrsAreCanonical() {
    #expect(CIDR("10.1.2.3/8")?.description == "10.0.0.0/8")
    #expect(CIDR("fd00::1:2/64")?.description == "fd00::/64")
    #expect(CIDR("1.2.3.4")?.description == "1.2.3.4/32")
    #expect(CIDR("1.2.3/8") == nil)
    #expect(CIDR("::1/129") == nil)
    #expect(CIDR("10.0.0.0/8")!.contains(CIDR("10.9.0.1")!))
    #expect(!CIDR("10.0.0.0/8")!.contains(CIDR("fd00::1")!))
  }

  @Test func resolvConfNameservers() {
    let servers = HostFacts.nameservers(
      in: "search svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\n# x\n")
    #expect(servers == [CIDR("10.96.0.10")!, CIDR("fd00::a")!])
  }
}
