package import Foundation
package import NIOConcurrencyHelpers

#if canImport(Glibc)
  import Glibc
#endif

/// Small blocking TCP servers and clients on loopback, each on its own thread.
package final class LoopbackServer: @unchecked Sendable {
  package enum Behaviour {
    /// Echo everything; on FIN, finish writing and shut down the write side.
    case echo
    /// Send `bytes` bytes of a pattern at once, then close.
    case source(Int)
    /// Read everything slowly (`chunk` bytes per `pauseMicros`), then reply with the byte count and close.
    case slowSink(chunk: Int, pauseMicros: UInt32)
    /// Reply with a fixed text and close.
    case banner(String)
  }

  package let port: Int
  private let fd: Int32
  package let accepted = NIOLockedValueBox(0)
  private let closed = NIOLockedValueBox(false)

  package init(_ behaviour: Behaviour, unixPath: String? = nil) throws {
    let fd: Int32
    if let unixPath {
      unlink(unixPath)
      fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
      var address = sockaddr_un()
      address.sun_family = sa_family_t(AF_UNIX)
      withUnsafeMutableBytes(of: &address.sun_path) { raw in
        _ = unixPath.utf8CString.withUnsafeBytes { raw.copyMemory(from: $0) }
      }
      let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
      }
      precondition(rc == 0)
      port = 0
    } else {
      fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var one: Int32 = 1
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      address.sin_port = 0
      let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      precondition(rc == 0)
      var bound = sockaddr_in()
      var length = socklen_t(MemoryLayout<sockaddr_in>.size)
      _ = withUnsafeMutablePointer(to: &bound) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
      }
      port = Int(UInt16(bigEndian: bound.sin_port))
    }
    listen(fd, 64)
    self.fd = fd
    let accepted = self.accepted
    Thread.detachNewThread {
      while true {
        let client = accept(fd, nil, nil)
        if client < 0 { return }
        accepted.withLockedValue { $0 += 1 }
        Thread.detachNewThread { LoopbackServer.serve(client, behaviour) }
      }
    }
  }

  deinit { close() }

  /// Closes the listener once: a second close (the deinit after an explicit one) would close whatever
  /// descriptor reused the number meanwhile, such as a proxy's socket in a test running in parallel.
  package func close() {
    let first = closed.withLockedValue { closed in
      defer { closed = true }
      return !closed
    }
    guard first else { return }
    shutdown(fd, Int32(SHUT_RDWR))
    Glibc.close(fd)
  }

  private static func serve(_ client: Int32, _ behaviour: Behaviour) {
    defer { Glibc.close(client) }
    var buffer = [UInt8](repeating: 0, count: 65536)
    switch behaviour {
    case .echo:
      while true {
        let n = read(client, &buffer, buffer.count)
        if n <= 0 { break }
        if !writeAll(client, Array(buffer[0..<n])) { return }
      }
      shutdown(client, Int32(SHUT_WR))
      while read(client, &buffer, buffer.count) > 0 {}
    case .source(let total):
      var sent = 0
      let chunk = (0..<65536).map { UInt8($0 % 251) }
      while sent < total {
        let n = min(chunk.count, total - sent)
        if !writeAll(client, Array(chunk[0..<n])) { return }
        sent += n
      }
    case .slowSink(let chunk, let pause):
      var total = 0
      while true {
        let n = read(client, &buffer, min(chunk, buffer.count))
        if n <= 0 { break }
        total += n
        usleep(pause)
      }
      _ = writeAll(client, Array("\(total)".utf8))
    case .banner(let text):
      _ = writeAll(client, Array(text.utf8))
    }
  }

  @discardableResult
  package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
      let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if n <= 0 { return false }
      offset += n
    }
    return true
  }
}

/// A blocking loopback client.
package struct LoopbackClient {
  package let fd: Int32

  package init(port: Int) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let rc = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
  }

  package func send(_ bytes: [UInt8]) -> Bool { LoopbackServer.writeAll(fd, bytes) }
  package func send(_ text: String) -> Bool { send(Array(text.utf8)) }
  package func finishWriting() { shutdown(fd, Int32(SHUT_WR)) }
  package func close() { Glibc.close(fd) }

  /// Reads until EOF (or error); `pauseMicros` between reads of at most `chunk` bytes makes a slow reader.
  package func readAll(chunk: Int = 65536, pauseMicros: UInt32 = 0) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: chunk)
    while true {
      let n = Glibc.read(fd, &buffer, chunk)
      if n <= 0 { break }
      out.append(contentsOf: buffer[0..<n])
      if pauseMicros > 0 { usleep(pauseMicros) }
    }
    return out
  }

  /// Reads exactly `count` bytes (fewer at EOF, error or the 10 s receive timeout).
  package func read(count: Int) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: max(1, count))
    while out.count < count {
      let n = Glibc.read(fd, &buffer, count - out.count)
      if n <= 0 { break }
      out.append(contentsOf: buffer[0..<n])
    }
    return out
  }

  /// Bytes read until EOF, counted without keeping them.
  package func countAll(chunk: Int = 65536, pauseMicros: UInt32 = 0) -> Int {
    var total = 0
    var buffer = [UInt8](repeating: 0, count: chunk)
    while true {
      let n = Glibc.read(fd, &buffer, chunk)
      if n <= 0 { break }
      total += n
      if pauseMicros > 0 { usleep(pauseMicros) }
    }
    return total
  }
}
