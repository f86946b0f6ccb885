import EnvoyAPI
import Foundation
import Logging
import NIOCore
import NIOPosix
import ProxyCore
import ProxyEngine
import SwiftProtobuf
import Synchronization
import Testing

@testable import ProxyHTTP

#if canImport(Glibc)
  import Glibc
#endif

// MARK: Config builders

func routeProto(prefix: String = "/", cluster: String = "upstream") -> Envoy_Config_Route_V3_Route {
  var route = Envoy_Config_Route_V3_Route()
  route.match.prefix = prefix
  route.route.cluster = cluster
  return route
}

func virtualHostProto(
  _ name: String, domains: [String], routes: [Envoy_Config_Route_V3_Route]
) -> Envoy_Config_Route_V3_VirtualHost {
  var vhost = Envoy_Config_Route_V3_VirtualHost()
  vhost.name = name
  vhost.domains = domains
  vhost.routes = routes
  return vhost
}

func routerFilter() -> Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter {
  var filter = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
  filter.name = "envoy.filters.http.router"
  filter.typedConfig = try! Google_Protobuf_Any(message: Envoy_Extensions_Filters_Http_Router_V3_Router())
  return filter
}

func hcmProto(
  virtualHosts: [Envoy_Config_Route_V3_VirtualHost], statPrefix: String = "ingress"
) -> HTTPConnectionManagerConfig.Proto {
  var hcm = HTTPConnectionManagerConfig.Proto()
  hcm.statPrefix = statPrefix
  hcm.routeConfig.name = "local"
  hcm.routeConfig.virtualHosts = virtualHosts
  hcm.httpFilters = [routerFilter()]
  return hcm
}

func configError(_ proto: HTTPConnectionManagerConfig.Proto) -> ProxyConfigError? {
  do {
    _ = try HTTPConnectionManagerConfig(proto, accessLog: AccessLogSink(validateOnly: true))
    return nil
  } catch {
    return error
  }
}

// MARK: Test upstream

/// A tiny HTTP/1.1 origin written with the codec under test. Paths:
/// - `/echo…`: answers 200 at once and streams the request body back with the same framing;
/// - `/close…`: `ok` with `connection: close`, then closes;
/// - `/ws…` with Upgrade: 101, then echoes raw bytes;
/// - `/silent…`: never answers;
/// - anything else: 200 whose body is the request head as received.
final class TestUpstream: Sendable {
  let channel: any Channel
  let connections = Atomic<Int>(0)
  let requests = Atomic<Int>(0)

  init(group: any EventLoopGroup) throws {
    let box = Box()
    channel = try ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.allowRemoteHalfClosure, value: true)
      .childChannelInitializer { child in
        box.upstream!.connections.wrappingAdd(1, ordering: .relaxed)
        return child.eventLoop.makeCompletedFuture {
          try child.pipeline.syncOperations.addHandler(TestUpstreamHandler(owner: box.upstream!))
        }
      }
      .bind(host: "127.0.0.1", port: 0).wait()
    box.upstream = self
  }

  final class Box: @unchecked Sendable { var upstream: TestUpstream? }

  var port: Int { channel.localAddress!.port! }
  var address: SocketAddress { channel.localAddress! }

  func close() { try? channel.close().wait() }
}

final class TestUpstreamHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  enum Mode { case echo, discard, tunnel }
  let owner: TestUpstream
  var pending: ByteBuffer?
  var framer: BodyFramer?
  var mode = Mode.discard

  init(owner: TestUpstream) { self.owner = owner }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    if mode == .tunnel {
      context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
      return
    }
    if var p = pending {
      p.writeBuffer(&bytes)
      bytes = p
      pending = nil
    }
    while bytes.readableBytes > 0 {
      if var framer {
        let progress = bytes.withUnsafeReadableBytes { framer.consume($0) }
        self.framer = framer
        switch progress {
        case .needMore:
          let slice = bytes.readSlice(length: bytes.readableBytes)!
          if mode == .echo { context.write(wrapOutboundOut(slice), promise: nil) }
        case .complete(let n):
          let slice = bytes.readSlice(length: n)!
          if mode == .echo { context.write(wrapOutboundOut(slice), promise: nil) }
          self.framer = nil
        case .invalid:
          context.close(promise: nil)
          return
        }
        continue
      }
      let result = bytes.withUnsafeReadableBytes { HTTP1HeadParser.parseRequest($0) }
      switch result {
      case .incomplete:
        pending = bytes
        context.flush()
        return
      case .invalid:
        context.close(promise: nil)
        return
      case .complete(let head, let framing):
        owner.requests.wrappingAdd(1, ordering: .relaxed)
        let headBytes = bytes.readSlice(length: head.length)!
        let target = head.target(in: headBytes) ?? ""
        var body = BodyFramer(framing)
        if case .none = body { body = .none }
        if target.hasPrefix("/echo") {
          mode = .echo
          var out = ByteBuffer(string: "HTTP/1.1 200 OK\r\n")
          switch framing {
          case .chunked: out.writeString("transfer-encoding: chunked\r\n\r\n")
          case .contentLength(let n): out.writeString("content-length: \(n)\r\n\r\n")
          default: out.writeString("content-length: 0\r\n\r\n")
          }
          context.write(wrapOutboundOut(out), promise: nil)
        } else if target.hasPrefix("/close") {
          mode = .discard
          context.writeAndFlush(
            wrapOutboundOut(
              ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")),
            promise: nil)
          context.close(promise: nil)
          return
        } else if target.hasPrefix("/ws"), head.isUpgrade {
          mode = .tunnel
          context.write(
            wrapOutboundOut(
              ByteBuffer(
                string:
                  "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")),
            promise: nil)
          if bytes.readableBytes > 0 {
            context.write(wrapOutboundOut(bytes.readSlice(length: bytes.readableBytes)!), promise: nil)
          }
          context.flush()
          return
        } else if target.hasPrefix("/silent") {
          mode = .discard
        } else {
          mode = .discard
          let text = String(buffer: headBytes)
          context.write(
            wrapOutboundOut(
              ByteBuffer(
                string: "HTTP/1.1 200 OK\r\ncontent-length: \(text.utf8.count)\r\nserver: test\r\n\r\n\(text)"
              )),
            promise: nil)
        }
        if case .none = body {} else { framer = body }
      }
    }
    context.flush()
  }

  func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case .inputClosed? = event as? ChannelEvent { context.close(promise: nil) }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

// MARK: Proxy harness

/// A `ProxyContext`, one cluster `upstream` (static, one host) and one listener on 127.0.0.1:0 whose
/// only filter chain is the HTTP connection manager built from `hcm`, served by one reactor worker (the
/// proxy's data path); the test upstream runs on a NIO event loop.
final class ProxyHarness {
  let group: MultiThreadedEventLoopGroup
  let engine: ReactorListenerEngine
  let stats: StatsStore
  let context: ProxyContext
  let listeners: ListenerManager
  let upstream: TestUpstream?
  let accessLog = AccessLogSink()

  init(
    hcm: HTTPConnectionManagerConfig.Proto? = nil, upstreamAddress: SocketAddress? = nil,
    withUpstream: Bool = true, direction: Listener.TrafficDirection = .inbound,
    clusterIdleTimeout: TimeAmount? = nil
  ) async throws {
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    stats = try StatsStore(config: StatsConfig())
    let upstream = withUpstream ? try TestUpstream(group: group) : nil
    self.upstream = upstream
    var cluster = Cluster(name: "upstream")
    cluster.connectTimeout = .seconds(2)
    let address = upstreamAddress ?? upstream!.address
    cluster.endpoints = [Cluster.Endpoint(address: .socket(address))]
    if let clusterIdleTimeout { cluster.upstreamHTTPIdleTimeout = clusterIdleTimeout }
    let logger = Logger(label: "test")
    let clusters = ClusterManager(clusters: [cluster], stats: stats, logger: logger)
    context = ProxyContext(clusterManager: clusters, stats: stats, logger: logger, accessLog: accessLog)
    let proto =
      hcm ?? hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [routeProto()])])
    let config = try HTTPConnectionManagerConfig(proto, accessLog: accessLog)
    let filter = try HTTPConnectionManagerFilter(config: config, stats: stats)
    var listener = Listener(name: "http", address: try SocketAddress(ipAddress: "127.0.0.1", port: 0))
    listener.trafficDirection = direction
    listener.filterChains = [FilterChain(name: "http", terminal: filter)]
    engine = try ReactorListenerEngine(workers: 1, logger: logger)
    listeners = ListenerManager(listeners: [listener], context: context, engine: engine)
    try await listeners.start()
  }

  var port: Int { listeners.listeners[0].boundAddress!.port! }

  func counter(_ name: String) -> UInt64 { stats.counterValue(name) ?? 0 }

  func shutdown() async {
    await listeners.stopAccepting(inboundOnly: false)
    engine.shutdown()
    upstream?.close()
    try? await group.shutdownGracefully()
  }
}

/// Polls `condition` until it holds or `seconds` pass (no fixed sleeps).
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if condition() { return true }
    usleep(2_000)
  }
  return condition()
}

// MARK: Blocking test client

struct TestResponse {
  var status: Int
  var headers: [(String, String)]
  var body: [UInt8]
  var framing: HTTP1Framing

  func header(_ name: String) -> String? {
    headers.first { $0.0.lowercased() == name.lowercased() }?.1
  }
  var text: String { String(decoding: body, as: UTF8.self) }
}

struct ClientError: Error, CustomStringConvertible {
  var description: String
}

/// A plain blocking TCP client with a receive timeout, parsing responses with the codec.
final class TestClient: @unchecked Sendable {
  let fd: Int32
  private var buffer: [UInt8] = []

  init(port: Int) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard rc == 0 else { throw ClientError(description: "connect failed: \(errno)") }
  }

  deinit { Glibc.close(fd) }

  func send(_ text: String) throws { try send(Array(text.utf8)) }

  func send(_ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
      let n = bytes.withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
      }
      guard n > 0 else { throw ClientError(description: "send failed: \(errno)") }
      offset += n
    }
  }

  func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

  /// Reads more bytes; false at EOF.
  private func fill() throws -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65536)
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
    if n == 0 { return false }
    guard n > 0 else { throw ClientError(description: "recv failed: \(errno)") }
    buffer += chunk[0..<n]
    return true
  }

  /// Reads one response (1xx included) and its body.
  func readResponse(method: HTTP1Method = .get) throws -> TestResponse {
    while true {
      let result = buffer.withUnsafeBytes { HTTP1HeadParser.parseResponse($0, requestMethod: method) }
      switch result {
      case .incomplete:
        guard try fill() else { throw ClientError(description: "EOF before a response head") }
        continue
      case .invalid(let error):
        throw ClientError(description: "bad response: \(error)")
      case .complete(let head, let framing):
        let headers = buffer.withUnsafeBytes { raw in
          head.fields.indices.map { (head.name(at: $0, in: raw), head.value(at: $0, in: raw)) }
        }
        buffer.removeFirst(head.length)
        var framer = BodyFramer(framing)
        var body: [UInt8] = []
        if case .upgrade = framing {
          return TestResponse(status: head.status!, headers: headers, body: [], framing: framing)
        }
        while true {
          let progress = buffer.withUnsafeBytes { framer.consume($0) }
          switch progress {
          case .needMore:
            body += buffer
            buffer = []
            if case .none = framer {
              return TestResponse(status: head.status!, headers: headers, body: body, framing: framing)
            }
            guard try fill() else {
              if case .untilClose = framer {
                return TestResponse(status: head.status!, headers: headers, body: body, framing: framing)
              }
              throw ClientError(description: "EOF inside the body")
            }
          case .complete(let n):
            body += buffer[0..<n]
            buffer.removeFirst(n)
            return TestResponse(status: head.status!, headers: headers, body: body, framing: framing)
          case .invalid(let error):
            throw ClientError(description: "bad body: \(error)")
          }
        }
      }
    }
  }

  /// Reads raw bytes until `count` are there.
  func readBytes(_ count: Int) throws -> [UInt8] {
    while buffer.count < count {
      guard try fill() else { throw ClientError(description: "EOF") }
    }
    let out = Array(buffer[0..<count])
    buffer.removeFirst(count)
    return out
  }

  /// True when the peer closed (EOF) with no further bytes.
  func isClosedByPeer() -> Bool {
    guard buffer.isEmpty else { return false }
    return (try? fill()) == false
  }
}

/// A chunked body of `total` bytes in chunks of `chunk`, deterministic content.
func chunkedBody(total: Int, chunk: Int) -> [UInt8] {
  var out: [UInt8] = []
  var sent = 0
  var k: UInt8 = 0
  while sent < total {
    let n = min(chunk, total - sent)
    out += Array(String(n, radix: 16).utf8) + [13, 10]
    for _ in 0..<n {
      out.append(97 &+ k % 26)
      k &+= 1
    }
    out += [13, 10]
    sent += n
  }
  out += Array("0\r\n\r\n".utf8)
  return out
}

struct TestFailure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
