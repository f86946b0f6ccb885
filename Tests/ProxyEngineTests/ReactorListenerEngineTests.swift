import Logging
import NIOCore
import TestSupport
import Testing

@testable import ProxyCore
@testable import ProxyEngine

#if canImport(Glibc)
  import Glibc
#endif

extension SocketSuites {
  @Suite("ReactorListenerEngine: listeners on every worker", .timeLimit(.minutes(2)))
  struct ReactorListenerEngineTests {
    private func serve(reusePort: Bool, body: (ActiveListener, StatsStore) throws -> Void) async throws {
      let upstream = try LoopbackServer(.echo)
      defer { upstream.close() }
      let stats = try StatsStore(config: StatsConfig())
      var logger = Logger(label: "test")
      logger.logLevel = .critical
      let clusters = ClusterManager(
        clusters: [try staticCluster("echo", port: upstream.port)], stats: stats, logger: logger)
      await clusters.initialize()
      let context = ProxyContext(
        clusterManager: clusters, stats: stats, logger: logger, accessLog: AccessLogSink())
      var config = Listener(name: "front", address: try SocketAddress(ipAddress: "127.0.0.1", port: 0))
      config.reusePort = reusePort
      config.filterChains = [
        FilterChain(
          name: "tcp",
          terminal: try TcpProxyFilter(
            config: TcpProxyConfig(statPrefix: "front", route: .cluster("echo")), stats: stats))
      ]
      let listener = ActiveListener(config: config, stats: stats)
      let engine = try ReactorListenerEngine(workers: 2, logger: logger)
      defer { engine.shutdown() }
      #expect(engine.canServe(listener))
      let binding = try await engine.bind(
        ConfigCell(listener), handOff: ConfigCell(HandOffTable([listener])), context: context,
        globalConnectionLimit: nil)
      listener.setEngineBinding(binding)
      try body(listener, stats)
      await binding.stopAccepting()
      let port = try #require(binding.boundAddress?.port)
      #expect(throws: (any Error).self) { _ = try LoopbackClient(port: port) }  // nothing listens any more
    }

    @Test(
      "with and without SO_REUSEPORT, two workers serve every connection; stopping closes the port",
      arguments: [true, false])
    func twoWorkers(reusePort: Bool) async throws {
      try await serve(reusePort: reusePort) { listener, stats in
        let port = try #require(listener.boundAddress?.port)
        for index in 0..<40 {
          let client = try LoopbackClient(port: port)
          #expect(client.send("hello \(index)"))
          client.finishWriting()
          #expect(client.readAll() == Array("hello \(index)".utf8))
          client.close()
        }
        #expect(eventually { stats.counterValue("listener.127.0.0.1_0.downstream_cx_total") == 40 })
        #expect(eventually { stats.gaugeValue("listener.127.0.0.1_0.downstream_cx_active") == 0 })
      }
    }
  }
}
