import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The open-files limit: raised at start, and running out of descriptors pauses accepting instead of
/// spinning on accept(2).
@Suite("pilotfish-proxy and the open-files limit", .serialized, .timeLimit(.minutes(2)))
struct OpenFilesTests {
  typealias RunningProxy = ProxyServeTests.RunningProxy

  static func listenerPort(_ proxy: RunningProxy) throws -> Int {
    let (_, listeners) = try proxy.request("/listeners")
    guard let last = listeners.split(separator: ":").last,
      let port = Int(last.trimmingCharacters(in: .whitespacesAndNewlines))
    else { throw TestFailure("no listener port in \(listeners)") }
    return port
  }

  @Test func softLimitIsRaisedToTheHardLimit() throws {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    let hard = limit.rlim_max
    try #require(hard > 200 && hard != rlim_t.max, "this test needs a finite hard limit above 200")
    let upstream = try LoopbackServer(.echo)
    let proxy = try RunningProxy(
      bootstrap: ProxyServeTests.bootstrap(upstreamPort: upstream.port), ulimit: ["-Sn", "200"])
    defer { proxy.stop() }
    #expect(proxy.waitUntilLive())
    let limits = try #require(proxy.openFilesLimits())
    #expect(limits.soft == String(hard), "soft \(limits.soft), hard \(limits.hard)")
  }

  /// An HTTP listener that answers every request itself: an idle connection holds one descriptor and no
  /// upstream, so running out of descriptors happens in accept(2) and nowhere else.
  static let directResponse = """
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    static_resources:
      listeners:
      - name: direct
        address: {socket_address: {address: 127.0.0.1, port_value: 0}}
        filter_chains:
        - filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: direct
              http_filters:
              - name: envoy.filters.http.router
                typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
              route_config:
                virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    direct_response: {status: 200, body: {inline_string: pong}}
    """

  @Test func exhaustedDescriptorsPauseAcceptingWithoutSpinning() async throws {
    let proxy = try RunningProxy(bootstrap: Self.directResponse, ulimit: ["-n", "64"])
    defer { proxy.stop() }
    #expect(proxy.waitUntilLive())
    let port = try Self.listenerPort(proxy)
    // More connections than 64 descriptors can hold: the kernel completes them all into the backlog; the
    // proxy runs out of descriptors part way.
    var clients: [LoopbackClient] = []
    for _ in 0..<60 { clients.append(try LoopbackClient(port: port)) }
    try await Task.sleep(for: .milliseconds(500))
    let before = try #require(proxy.cpuTime())
    try await Task.sleep(for: .seconds(2))
    let used = try #require(proxy.cpuTime()) - before
    #expect(used < .milliseconds(500), "the proxy used \(used) of CPU in 2 s with its descriptors exhausted")
    #expect(proxy.process.isRunning)
    for client in clients { client.close() }
    // Descriptors come back: new connections are served again, and the pauses were counted.
    var answered = false
    for _ in 0..<100 where !answered {
      let client = try LoopbackClient(port: port)
      if client.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n") {
        answered = String(decoding: client.readAll(), as: UTF8.self).hasSuffix("pong")
      }
      client.close()
      if !answered { try await Task.sleep(for: .milliseconds(50)) }
    }
    #expect(answered)
    let (_, stats) = try proxy.request("/stats?filter=accept_fd_exhausted")
    let value = stats.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    #expect((value ?? 0) > 0, "\(stats)")
  }
}

private struct TestFailure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
