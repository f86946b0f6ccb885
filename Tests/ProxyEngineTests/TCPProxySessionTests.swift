import Foundation
import Logging
import NIOCore
import Synchronization
import TestSupport
import Testing

@testable import ProxyCore
@testable import ProxyEngine

#if canImport(Glibc)
  import Glibc
#endif

/// tcp_proxy on one reactor thread: a listening socket whose connections each get a `TCPProxySession`.
final class EngineTCPHarness: @unchecked Sendable {
  let thread: ReactorThread
  let stats: StatsStore
  let context: ProxyContext
  let port: Int
  let open = Atomic<Int>(0)
  let filter: TcpProxyFilter

  init(cluster: Cluster, bufferLimit: Int = 1024 * 1024, configure: (inout TcpProxyConfig) -> Void = { _ in })
    async throws
  {
    stats = try StatsStore(config: StatsConfig())
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let clusters = ClusterManager(clusters: [cluster], stats: stats, logger: logger)
    await clusters.initialize()
    context = ProxyContext(clusterManager: clusters, stats: stats, logger: logger, accessLog: AccessLogSink())
    var config = TcpProxyConfig(statPrefix: "front", route: .cluster(cluster.name))
    configure(&config)
    filter = try TcpProxyFilter(config: config, stats: stats)
    thread = try ReactorThread(name: "engine-test")
    let fd = try ListenSocket.open(try SocketAddress(ipAddress: "127.0.0.1", port: 0), options: .init())
    let acceptor = Acceptor(harness: nil, bufferLimit: bufferLimit)
    port = try thread.sync { reactor in
      let listener = try ListenSocket(fd: fd, reactor: reactor, callbacks: acceptor)
      return listener.localAddress?.port ?? 0
    }
    acceptor.harness = self
  }

  func counter(_ name: String) -> UInt64 { stats.counterValue(name) ?? 0 }

  func stop() { thread.stopAndJoin() }

  final class Acceptor: ListenSocketCallbacks, @unchecked Sendable {
    weak var harness: EngineTCPHarness?
    let bufferLimit: Int
    init(harness: EngineTCPHarness?, bufferLimit: Int) {
      self.harness = harness
      self.bufferLimit = bufferLimit
    }

    func onAccept(_ listener: ListenSocket, fd: Int32, peer: SocketAddress?) {
      guard let harness else {
        close(fd)
        return
      }
      guard
        let connection = try? Connection(
          accepted: fd, reactor: listener.reactor, bufferLimit: bufferLimit, reading: false)
      else {
        close(fd)
        return
      }
      let local = connection.localAddress!
      let info = DownstreamConnection(
        id: 1,
        listener: ListenerInfo(
          name: "front", statPrefix: "front", direction: .outbound,
          perConnectionBufferLimitBytes: bufferLimit),
        remoteAddress: connection.remoteAddress ?? local, localAddress: local)
      let session = TCPProxySession(
        filter: harness.filter, proxy: harness.context, connection: info, downstream: connection)
      harness.open.add(1, ordering: .relaxed)
      session.onFinish = { harness.open.subtract(1, ordering: .relaxed) }
      session.start()
    }

    func onAcceptExhausted(_ listener: ListenSocket, errno: Int32) {}
  }
}

func staticCluster(_ name: String, port: Int, connectTimeout: TimeAmount = .seconds(2)) throws -> Cluster {
  var cluster = Cluster(name: name)
  cluster.endpoints = [
    Cluster.Endpoint(address: .socket(try SocketAddress(ipAddress: "127.0.0.1", port: port)))
  ]
  cluster.connectTimeout = connectTimeout
  return cluster
}

func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
  let deadline = MonotonicClock.milliseconds() + Int64(seconds * 1000)
  while MonotonicClock.milliseconds() < deadline {
    if condition() { return true }
    usleep(5_000)
  }
  return condition()
}

/// Open file descriptors of this process.
func openFileCount() -> Int {
  (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

extension SocketSuites {
  @Suite("tcp_proxy on the reactor, over real sockets", .timeLimit(.minutes(2)))
  struct TCPProxySessionTests {
    @Test("echo through the proxy with half-close, and the byte stats")
    func echoWithHalfClose() async throws {
      let upstream = try LoopbackServer(.echo)
      defer { upstream.close() }
      let proxy = try await EngineTCPHarness(cluster: try staticCluster("echo", port: upstream.port))
      defer { proxy.stop() }
      let client = try LoopbackClient(port: proxy.port)
      let payload = (0..<300_000).map { UInt8($0 % 253) }
      #expect(client.send(payload))
      client.finishWriting()  // half-close: the upstream still answers
      let echoed = client.readAll()
      client.close()
      #expect(echoed == payload)
      #expect(eventually { proxy.open.load(ordering: .relaxed) == 0 })
      #expect(proxy.counter("tcp.front.downstream_cx_rx_bytes_total") == 300_000)
      #expect(proxy.counter("tcp.front.downstream_cx_tx_bytes_total") == 300_000)
      #expect(proxy.counter("cluster.echo.upstream_cx_total") == 1)
      #expect(proxy.counter("cluster.echo.upstream_cx_destroy") == 1)
    }

    @Test("the upstream closing first: the client gets every byte, then EOF")
    func upstreamClosesFirst() async throws {
      let upstream = try LoopbackServer(.source(5_000_000))
      defer { upstream.close() }
      let proxy = try await EngineTCPHarness(cluster: try staticCluster("src", port: upstream.port))
      defer { proxy.stop() }
      let client = try LoopbackClient(port: proxy.port)
      #expect(client.countAll() == 5_000_000)
      client.close()
      #expect(eventually { proxy.open.load(ordering: .relaxed) == 0 })
    }

    @Test("a refused upstream closes the downstream with UF and counts the failure")
    func connectFailure() async throws {
      let probe = try LoopbackServer(.echo)
      let deadPort = probe.port
      probe.close()
      let proxy = try await EngineTCPHarness(cluster: try staticCluster("dead", port: deadPort))
      defer { proxy.stop() }
      let client = try LoopbackClient(port: proxy.port)
      #expect(client.readAll().isEmpty)
      client.close()
      #expect(eventually { proxy.counter("cluster.dead.upstream_cx_connect_fail") == 1 })
      #expect(eventually { proxy.open.load(ordering: .relaxed) == 0 })
    }

    @Test("an upstream that accepts and never reads: the proxy stops reading, memory stays bounded")
    func upstreamNeverReads() async throws {
      // A listener whose connections are accepted by the kernel and never read.
      let sink = loopbackSocket(listening: true)
      defer { close(sink.fd) }
      let limit = 256 * 1024
      let proxy = try await EngineTCPHarness(
        cluster: try staticCluster("sink", port: sink.port), bufferLimit: limit)
      defer { proxy.stop() }
      let client = try LoopbackClient(port: proxy.port)
      defer { client.close() }
      let flags = fcntl(client.fd, F_GETFL)
      _ = fcntl(client.fd, F_SETFL, flags | O_NONBLOCK)
      let chunk = [UInt8](repeating: 1, count: 65536)
      var sent = 0
      let deadline = MonotonicClock.milliseconds() + 3000
      var stalledSince: Int64?
      while MonotonicClock.milliseconds() < deadline, sent < 256 << 20 {
        let n = write(client.fd, chunk, chunk.count)
        if n > 0 {
          sent += n
          stalledSince = nil
        } else {
          if stalledSince == nil { stalledSince = MonotonicClock.milliseconds() }
          if MonotonicClock.milliseconds() - stalledSince! > 500 { break }
          usleep(1000)
        }
      }
      // What the proxy holds: kernel buffers on both sockets plus at most the limit (and one read) in user space.
      #expect(sent < 64 << 20)
      #expect(proxy.counter("tcp.front.downstream_flow_control_paused_reading_total") >= 1)
      #expect(proxy.counter("tcp.front.downstream_cx_rx_bytes_total") <= UInt64(sent))
    }

    @Test("10,000 proxied connections opened and closed leave no file descriptor behind")
    func noFdLeak() async throws {
      let upstream = try LoopbackServer(.echo)
      defer { upstream.close() }
      let proxy = try await EngineTCPHarness(cluster: try staticCluster("echo", port: upstream.port))
      defer { proxy.stop() }
      let before = openFileCount()
      for round in 0..<10_000 {
        let client = try LoopbackClient(port: proxy.port)
        if round % 10 == 0 {
          #expect(client.send("hi"))
          client.finishWriting()
          #expect(client.readAll() == Array("hi".utf8))
        }
        client.close()
      }
      #expect(eventually(5) { proxy.counter("tcp.front.downstream_cx_total") == 10_000 })
      #expect(eventually(20) { proxy.open.load(ordering: .relaxed) == 0 })
      #expect(eventually(5) { openFileCount() <= before + 2 })
    }
  }
}
