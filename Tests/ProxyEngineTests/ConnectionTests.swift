import NIOCore
import Testing

@testable import ProxyEngine

#if canImport(Glibc)
  import Glibc
#endif

/// Records what a connection reports.
final class Recorder: ConnectionCallbacks {
  var data: [UInt8] = []
  var endStream = false
  var events: [ConnectionEvent] = []
  var above = 0
  var below = 0
  var timers: [UInt32] = []
  /// Consume received bytes (false: leave them in the read buffer).
  var consume = true

  func onData(_ connection: Connection, endStream: Bool) {
    if consume {
      data += connection.readBuffer.readBytes(length: connection.readBuffer.readableBytes) ?? []
    }
    if endStream { self.endStream = true }
  }
  func onEvent(_ connection: Connection, _ event: ConnectionEvent) { events.append(event) }
  func onAboveWriteBufferHighWatermark(_ connection: Connection) { above += 1 }
  func onBelowWriteBufferLowWatermark(_ connection: Connection) { below += 1 }
  func onTimer(_ connection: Connection, kind: UInt32) { timers.append(kind) }
}

/// A connected pair of Unix stream sockets, non-blocking on our side.
func socketPair(sendBuffer: Int32? = nil) -> (ours: Int32, peer: Int32) {
  var fds: [Int32] = [0, 0]
  precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
  if var size = sendBuffer {
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, 4)
    setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &size, 4)
  }
  return (fds[0], fds[1])
}

/// A TCP socket bound to 127.0.0.1 on a free port (listening, with a backlog of 16, if asked).
func loopbackSocket(listening: Bool) -> (fd: Int32, port: Int) {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  _ = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
      _ = bind(fd, pointer, length)
      if listening { _ = listen(fd, 16) }
      return getsockname(fd, pointer, &length)
    }
  }
  return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// Reads what is available from a non-blocking fd.
func drain(_ fd: Int32, limit: Int = 1 << 20) -> [UInt8] {
  var out: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  while out.count < limit {
    let n = read(fd, &chunk, chunk.count)
    if n <= 0 { break }
    out += chunk[0..<n]
  }
  return out
}

/// Runs the reactor until `condition` holds (bounded by `iterations` wake-ups of at most 10 ms).
func spin(_ reactor: Reactor, iterations: Int = 500, until condition: () -> Bool) -> Bool {
  for _ in 0..<iterations {
    if condition() { return true }
    reactor.runOnce(timeoutMilliseconds: 10)
  }
  return condition()
}

extension SocketSuites {
  @Suite("Connection: buffers, watermarks, half-close, timers (socket pairs, one reactor driven here)")
  struct ConnectionTests {
    @Test("a write the kernel takes only in part is kept, raises the high watermark, and drains in order")
    func partialWritesAndWatermarks() throws {
      let reactor = try Reactor(name: "test")
      let pair = socketPair(sendBuffer: 16 * 1024)
      defer { close(pair.peer) }
      let connection = try Connection(accepted: pair.ours, reactor: reactor, bufferLimit: 64 * 1024)
      let recorder = Recorder()
      connection.callbacks = recorder
      let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
      var buffer = ByteBuffer(bytes: payload)
      connection.write(&buffer)
      #expect(buffer.readableBytes == 0)  // consumed: the connection keeps what the kernel did not take
      #expect(connection.bufferedOutput > 64 * 1024)
      #expect(recorder.above == 1)
      var received: [UInt8] = []
      #expect(
        spin(reactor, iterations: 5000) {
          received += drain(pair.peer)
          return received.count == payload.count
        })
      #expect(received == payload)
      #expect(connection.bufferedOutput == 0)
      #expect(recorder.below == 1)
      #expect(!connection.holdsBuffers)  // the write buffer went back
      connection.close(.noFlush)
    }

    @Test("the peer's FIN arrives as endStream; we can still write; our shutdown then closes")
    func halfCloseByPeer() throws {
      let reactor = try Reactor(name: "test")
      let pair = socketPair()
      defer { close(pair.peer) }
      let connection = try Connection(accepted: pair.ours, reactor: reactor)
      let recorder = Recorder()
      connection.callbacks = recorder
      _ = write(pair.peer, "ping", 4)
      shutdown(pair.peer, Int32(SHUT_WR))
      #expect(spin(reactor) { recorder.endStream })
      #expect(recorder.data == Array("ping".utf8))
      #expect(connection.state == .open)
      var reply = ByteBuffer(string: "pong")
      connection.write(&reply, endStream: true)
      #expect(drain(pair.peer) == Array("pong".utf8))
      #expect(connection.state == .closed)
      #expect(recorder.events == [.remoteClose(nil)])
      var byte: UInt8 = 0
      #expect(read(pair.peer, &byte, 1) == 0)  // EOF after pong
    }

    @Test("our shutdown first: the peer sees EOF and may still send until it closes")
    func halfCloseByUs() throws {
      let reactor = try Reactor(name: "test")
      let pair = socketPair()
      let connection = try Connection(accepted: pair.ours, reactor: reactor)
      let recorder = Recorder()
      connection.callbacks = recorder
      connection.shutdownWrite()
      var byte: UInt8 = 0
      #expect(read(pair.peer, &byte, 1) == 0)
      _ = write(pair.peer, "late", 4)
      close(pair.peer)
      #expect(spin(reactor) { connection.state == .closed })
      #expect(recorder.data == Array("late".utf8))
      #expect(recorder.endStream)
    }

    @Test("close(.flushWrite) writes pending output before closing; .noFlush drops it")
    func closeModes() throws {
      let reactor = try Reactor(name: "test")
      let pair = socketPair(sendBuffer: 8 * 1024)
      defer { close(pair.peer) }
      let connection = try Connection(accepted: pair.ours, reactor: reactor)
      var payload = ByteBuffer(repeating: 7, count: 300_000)
      connection.write(&payload)
      connection.close(.flushWrite)
      #expect(connection.state == .open)  // waiting for the output to drain
      var received = 0
      #expect(
        spin(reactor, iterations: 5000) {
          received += drain(pair.peer).count
          return connection.state == .closed
        })
      received += drain(pair.peer).count
      #expect(received == 300_000)
    }

    @Test("a connection's timer reports to its callbacks; closing destroys it")
    func timers() throws {
      let reactor = try Reactor(name: "test")
      let pair = socketPair()
      defer { close(pair.peer) }
      let connection = try Connection(accepted: pair.ours, reactor: reactor)
      let recorder = Recorder()
      connection.callbacks = recorder
      let timer = connection.makeTimer(kind: 5)
      reactor.arm(timer, afterMilliseconds: 20)
      #expect(spin(reactor) { recorder.timers == [5] })
      reactor.arm(timer, afterMilliseconds: 20)
      connection.close(.noFlush)
      #expect(reactor.armedTimers == 0)
    }

    @Test(
      "a refused loopback connect fails inside the constructor (the handshake is synchronous) and frees the fd"
    )
    func connectRefused() throws {
      let reactor = try Reactor(name: "test")
      // A port nothing listens on: bind one and close it.
      let probe = loopbackSocket(listening: false)
      close(probe.fd)
      let before = openFileCount()
      #expect(
        throws: SystemCallError("connect", errno: ECONNREFUSED, context: "to [IPv4]127.0.0.1:\(probe.port)")
      ) {
        _ = try Connection(
          connectingTo: try SocketAddress(ipAddress: "127.0.0.1", port: probe.port), reactor: reactor)
      }
      #expect(reactor.handleCount == 0)
      #expect(openFileCount() == before)
    }

    @Test("a connect still in flight is reported by an event once it fails (a non-loopback address)")
    func connectFailsLater() throws {
      let reactor = try Reactor(name: "test")
      // 192.0.2.1 (TEST-NET-1) is not routed here: the connect fails with ENETUNREACH at once, or stays in flight
      // until the connection's own timer; either way nothing is left open.
      let address = try SocketAddress(ipAddress: "192.0.2.1", port: 9)
      let connection: Connection
      do throws(SystemCallError) {
        connection = try Connection(connectingTo: address, reactor: reactor)
      } catch {
        #expect([ENETUNREACH, EHOSTUNREACH, EACCES].contains(error.errno))
        #expect(reactor.handleCount == 0)
        return
      }
      let recorder = Recorder()
      connection.callbacks = recorder
      #expect(connection.state == .connecting)
      connection.close(.noFlush)
      #expect(recorder.events == [.localClose])
      #expect(reactor.handleCount == 0)
    }

    @Test("a hang-up while reading is disabled parks the fd instead of waking the reactor in a loop")
    func hangUpWhileNotReading() throws {
      let reactor = try Reactor(name: "test")
      let pair = socketPair()
      let connection = try Connection(accepted: pair.ours, reactor: reactor)
      let recorder = Recorder()
      connection.callbacks = recorder
      connection.readDisable(true)
      connection.shutdownWrite()
      _ = write(pair.peer, "tail", 4)
      close(pair.peer)  // both directions now shut: EPOLLHUP is level-triggered
      let start = MonotonicClock.milliseconds()
      var wakeUps = 0
      while MonotonicClock.milliseconds() - start < 100 {
        reactor.runOnce(timeoutMilliseconds: 20)
        wakeUps += 1
      }
      #expect(wakeUps < 20)  // ~5 timeouts of 20 ms, not thousands of HUP wake-ups
      connection.readDisable(false)
      #expect(spin(reactor) { connection.state == .closed })
      #expect(recorder.data == Array("tail".utf8))
    }
  }
}
