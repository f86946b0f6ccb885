import Foundation
import ProxyCore
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The access-log buffer against a reader that stops: bounded memory, whole lines dropped and counted,
/// a flush that never blocks, and everything kept in order once the reader is back.
@Suite struct AccessLogSinkTests {
  @Test func aPipeNobodyReadsBoundsTheBufferAndNeverBlocksAFlush() throws {
    var fds: [Int32] = [0, 0]
    try #require(pipe(&fds) == 0)
    defer {
      close(fds[0])
      close(fds[1])
    }
    let path = "/dev/fd/\(fds[1])"
    let sink = AccessLogSink(maxBufferedBytes: 256 * 1024)
    // /dev/fd/N opens a new description of the pipe's write end: the same pipe.
    try sink.open(path)
    let line = String(repeating: "x", count: 99) + "\n"
    var flushes: [Duration] = []
    for round in 0..<100 {
      for _ in 0..<1000 { sink.append(line, to: path) }  // 100 kB a round, 10 MB in all
      let start = ContinuousClock.now
      sink.flush()
      flushes.append(ContinuousClock.now - start)
      #expect(sink.bufferedBytes <= 256 * 1024, "round \(round): \(sink.bufferedBytes) bytes buffered")
    }
    #expect(flushes.max()! < .seconds(1), "a flush blocked for \(flushes.max()!)")
    // The pipe holds 64 KiB and the buffer 256 KiB: nearly all of the 100,000 lines were dropped.
    #expect(sink.droppedLines > 90_000)

    // The reader comes back: what was kept arrives in whole lines.
    let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: false)
    var received = Data()
    let deadline = ContinuousClock.now + .seconds(10)
    while sink.bufferedBytes > 0 && ContinuousClock.now < deadline {
      received += reader.availableData
      sink.flush()
    }
    #expect(sink.bufferedBytes == 0)
    received += Self.drain(fds[0])
    let text = String(decoding: received, as: UTF8.self)
    #expect(!text.isEmpty)
    #expect(text.hasSuffix("\n"))
    #expect(text.split(separator: "\n").allSatisfy { $0.count == 99 })
  }

  /// Reads what is in the pipe now without blocking.
  static func drain(_ fd: Int32) -> Data {
    var out = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&poller, 1, 0) > 0 else { return out }
      let n = read(fd, &buffer, buffer.count)
      guard n > 0 else { return out }
      out.append(contentsOf: buffer[0..<n])
    }
  }
}
