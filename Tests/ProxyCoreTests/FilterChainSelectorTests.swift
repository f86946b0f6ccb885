import NIOCore
import TestSupport
import Testing

@testable import ProxyCore

/// A terminal filter that only names itself, for selection tests.
struct NamedFilter: TerminalNetworkFilter {
  var filterName: String
  var clusterNames: [String] { [] }
  func install(
    on channel: any Channel, connection: DownstreamConnection, context: ProxyContext,
    initialBytes: ByteBuffer?
  ) throws {}
}

@Suite("Filter-chain selection follows Envoy's precedence")
struct FilterChainSelectorTests {
  func chain(_ name: String, _ configure: (inout FilterChainMatch) throws -> Void) rethrows -> FilterChain {
    var chain = FilterChain(name: name, terminal: NamedFilter(filterName: name))
    try configure(&chain.match)
    return chain
  }

  func connection(
    to destination: String, port: Int, from source: String = "10.1.1.1", sni: String? = nil,
    transport: String = "raw_buffer",
    alpn: [String] = []
  ) throws -> DownstreamConnection {
    let info = ListenerInfo(
      name: "l", statPrefix: "l", direction: .inbound, perConnectionBufferLimitBytes: 1 << 20)
    var c = DownstreamConnection(
      id: 1, listener: info, remoteAddress: try SocketAddress(ipAddress: source, port: 40000),
      localAddress: try SocketAddress(ipAddress: destination, port: port))
    c.serverName = sni
    c.transportProtocol = transport
    c.applicationProtocols = alpn
    return c
  }

  @Test func istioInboundLayout() throws {
    // The shape of Istio's virtualInbound: blackhole on 15006, per-port chains, TLS/HTTP passthrough.
    let selector = FilterChainSelector(
      chains: [
        try chain("blackhole") { $0.destinationPort = 15006 },
        try chain("catchall-tls-http") {
          $0.transportProtocol = "tls"
          $0.applicationProtocols = ["istio-http/1.1", "istio-h2"]
        },
        try chain("catchall-plain-http") {
          $0.transportProtocol = "raw_buffer"
          $0.applicationProtocols = ["http/1.1", "h2c"]
        },
        try chain("catchall-tcp") { $0.transportProtocol = "raw_buffer" },
        try chain("catchall-tls") { $0.transportProtocol = "tls" },
        try chain("port-8080-plain") {
          $0.destinationPort = 8080
          $0.transportProtocol = "raw_buffer"
        },
      ], defaultChain: nil)
    #expect(selector.select(try connection(to: "10.0.0.5", port: 15006))?.name == "blackhole")
    #expect(
      selector.select(try connection(to: "10.0.0.5", port: 9000, alpn: ["http/1.1"]))?.name
        == "catchall-plain-http")
    #expect(selector.select(try connection(to: "10.0.0.5", port: 9000))?.name == "catchall-tcp")
    #expect(
      selector.select(try connection(to: "10.0.0.5", port: 9000, transport: "tls", alpn: ["istio-h2"]))?.name
        == "catchall-tls-http")
    #expect(
      selector.select(try connection(to: "10.0.0.5", port: 9000, transport: "tls", alpn: ["h2"]))?.name
        == "catchall-tls")
    #expect(
      selector.select(try connection(to: "10.0.0.5", port: 8080, alpn: ["http/1.1"]))?.name
        == "port-8080-plain")
    // Port 8080 matched a chain specifically; TLS on 8080 has no chain there, and Envoy does not fall back.
    #expect(selector.select(try connection(to: "10.0.0.5", port: 8080, transport: "tls")) == nil)
  }

  @Test func serverNamesExactBeatsWildcardBeatsNone() throws {
    let selector = FilterChainSelector(
      chains: [
        try chain("exact") { $0.serverNames = ["api.example.com"] },
        try chain("wild") { $0.serverNames = ["*.example.com"] },
        try chain("deeper-wild") { $0.serverNames = ["*.eu.example.com"] },
        try chain("any") { _ in },
      ], defaultChain: nil)
    #expect(
      selector.select(try connection(to: "1.2.3.4", port: 443, sni: "api.example.com"))?.name == "exact")
    #expect(selector.select(try connection(to: "1.2.3.4", port: 443, sni: "web.example.com"))?.name == "wild")
    #expect(
      selector.select(try connection(to: "1.2.3.4", port: 443, sni: "x.eu.example.com"))?.name
        == "deeper-wild")
    #expect(selector.select(try connection(to: "1.2.3.4", port: 443, sni: "example.org"))?.name == "any")
    #expect(selector.select(try connection(to: "1.2.3.4", port: 443))?.name == "any")
  }

  @Test func longestPrefixAndSourceCriteria() throws {
    let selector = FilterChainSelector(
      chains: [
        try chain("ten") { $0.prefixRanges = [try CIDRRange(addressPrefix: "10.0.0.0", prefixLength: 8)] },
        try chain("ten-one") {
          $0.prefixRanges = [try CIDRRange(addressPrefix: "10.1.0.0", prefixLength: 16)]
        },
        try chain("ten-one-from-loopback") {
          $0.prefixRanges = [try CIDRRange(addressPrefix: "10.1.0.0", prefixLength: 16)]
          $0.sourceType = .sameIPOrLoopback
        },
      ], defaultChain: FilterChain(name: "default", terminal: NamedFilter(filterName: "default")))
    #expect(selector.select(try connection(to: "10.9.9.9", port: 80))?.name == "ten")
    #expect(selector.select(try connection(to: "10.1.2.3", port: 80))?.name == "ten-one")
    #expect(
      selector.select(try connection(to: "10.1.2.3", port: 80, from: "127.0.0.1"))?.name
        == "ten-one-from-loopback")
    #expect(selector.select(try connection(to: "192.168.1.1", port: 80))?.name == "default")
  }

  @Test func cidrRanges() throws {
    let v4 = try CIDRRange(addressPrefix: "192.168.0.0", prefixLength: 23)
    #expect(v4.contains(try SocketAddress(ipAddress: "192.168.1.200", port: 1)))
    #expect(!v4.contains(try SocketAddress(ipAddress: "192.168.2.1", port: 1)))
    #expect(v4.contains(try SocketAddress(ipAddress: "::ffff:192.168.1.1", port: 1)))
    let v6 = try CIDRRange(addressPrefix: "fd00::", prefixLength: 8)
    #expect(v6.contains(try SocketAddress(ipAddress: "fd12::1", port: 1)))
    #expect(!v6.contains(try SocketAddress(ipAddress: "10.0.0.1", port: 1)))
    #expect(throws: ProxyConfigError("prefix_len", "33 is out of range for 10.0.0.0 (0–32)")) {
      try CIDRRange(addressPrefix: "10.0.0.0", prefixLength: 33)
    }
  }
}

@Suite("Listener-filter inspectors")
struct InspectorTests {
  @Test func tlsClientHello() {
    let hello = TestClientHello.record(
      sni: "reviews.default.svc.cluster.local", alpn: ["istio-peer-exchange", "istio"])
    hello.withUnsafeBytes {
      #expect(
        TLSClientHelloInspector.inspect($0)
          == .tls(serverName: "reviews.default.svc.cluster.local", alpn: ["istio-peer-exchange", "istio"]))
    }
    // Every prefix needs more data; nothing is decided early.
    for cut in stride(from: 1, to: hello.count, by: 7) {
      hello[0..<cut].withUnsafeBytes { #expect(TLSClientHelloInspector.inspect($0) == .needMoreData) }
    }
    Array("GET / HTTP/1.1\r\n".utf8).withUnsafeBytes {
      #expect(TLSClientHelloInspector.inspect($0) == .notMatched)
    }
  }

  @Test func httpInspector() {
    func inspect(_ text: String) -> InspectionResult {
      Array(text.utf8).withUnsafeBytes { HTTPInspector.inspect($0) }
    }
    #expect(inspect("GET /x HTTP/1.1\r\nHost: a\r\n") == .http("http/1.1"))
    #expect(inspect("POST / HTTP/1.0\r\n") == .http("http/1.0"))
    #expect(inspect("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == .http("h2c"))
    #expect(inspect("PRI * HTTP/2") == .needMoreData)
    #expect(inspect("GET /partial") == .needMoreData)
    #expect(inspect("\u{16}\u{03}\u{01}") == .notMatched)
    #expect(inspect("SSH-2.0-OpenSSH\r\n") == .notMatched)
  }
}
