internal import Synchronization

#if canImport(Glibc)
  internal import Glibc
#endif

/// Buffered access-log files shared by all connections. Lines are appended under a short lock and written
/// by `flush()`, which the composition root calls every `--file-flush-interval-msec` (and at exit), so
/// the event loops never block on file I/O.
///
/// Bounded: each file buffers at most `maxBufferedBytes` (lines written but not yet taken by the file
/// included). A line that does not fit is dropped whole and counted in `droppedLines`, so a stdout nobody
/// reads (a stuck log collector) costs a counter, never memory. `flush` never blocks on such a file: it
/// writes only what the file takes now (a pipe or socket is polled before each write of at most
/// `PIPE_BUF` bytes) and keeps the rest for the next flush.
package final class AccessLogSink: Sendable {
  private struct File {
    var fd: Int32
    /// A regular file takes every write at once; a pipe, socket or terminal may block.
    var isRegular: Bool
    var buffer: [UInt8] = []
    /// Bytes taken out by a flush that is writing them now.
    var inFlight = 0
  }

  private let files = Mutex<[String: File]>([:])
  private let maxBuffered: Int
  private let dropped = Atomic<UInt64>(0)

  /// Validation mode: `open` checks the directory is writable but creates nothing.
  private let validateOnly: Bool

  package init(maxBufferedBytes: Int = 4 * 1024 * 1024, validateOnly: Bool = false) {
    self.maxBuffered = max(1, maxBufferedBytes)
    self.validateOnly = validateOnly
  }

  /// Lines dropped so far because their file's buffer was full.
  package var droppedLines: UInt64 { dropped.load(ordering: .relaxed) }

  /// Bytes buffered now over every file (in-flight writes included).
  package var bufferedBytes: Int {
    files.withLock { $0.values.reduce(0) { $0 + $1.buffer.count + $1.inFlight } }
  }

  /// Opens (creating, appending) the file now so a bad path fails at configuration time.
  package func open(_ path: String) throws(ProxyConfigError) {
    try files.withLock { (files: inout [String: File]) throws(ProxyConfigError) in
      if files[path] != nil { return }
      let fd: Int32
      switch path {
      case "/dev/stdout": fd = STDOUT_FILENO
      case "/dev/stderr": fd = STDERR_FILENO
      default:
        if validateOnly {
          let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
          guard access(directory.isEmpty ? "/" : directory, W_OK) == 0 else {
            throw ProxyConfigError(
              "path", "cannot open access log \(path): \(String(cString: strerror(errno)))")
          }
          return
        }
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
          throw ProxyConfigError(
            "path", "cannot open access log \(path): \(String(cString: strerror(errno)))")
        }
      }
      var status = stat()
      let isRegular = fstat(fd, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
      files[path] = File(fd: fd, isRegular: isRegular)
    }
  }

  package func append(_ line: String, to path: String) {
    let fits = files.withLock { files -> Bool in
      guard let used = files[path].map({ $0.buffer.count + $0.inFlight }) else { return true }
      guard used + line.utf8.count <= maxBuffered else { return false }
      files[path]?.buffer.append(contentsOf: line.utf8)  // in place: the buffer is not copied
      return true
    }
    if !fits { dropped.add(1, ordering: .relaxed) }
  }

  /// Writes what each file takes. `waitingUpTo`: how long to wait for a pipe or socket that is full
  /// (zero: write only what it takes now). Safe to call from any thread; writes happen outside the lock.
  package func flush(waitingUpTo wait: Duration = .zero) {
    let pending: [(path: String, fd: Int32, isRegular: Bool, bytes: [UInt8])] = files.withLock { files in
      var out: [(String, Int32, Bool, [UInt8])] = []
      for (path, var file) in files where !file.buffer.isEmpty && file.inFlight == 0 {
        out.append((path, file.fd, file.isRegular, file.buffer))
        file.inFlight = file.buffer.count
        file.buffer = []
        files[path] = file
      }
      return out
    }
    let deadline = ContinuousClock.now + wait
    for item in pending {
      let written = Self.write(item.bytes, to: item.fd, isRegular: item.isRegular, deadline: deadline)
      files.withLock { files in
        guard var file = files[item.path] else { return }
        files[item.path] = nil
        file.inFlight = 0
        if written < item.bytes.count {
          // Not taken yet: first in line for the next flush.
          file.buffer = Array(item.bytes[written...]) + file.buffer
        }
        files[item.path] = file
      }
    }
  }

  /// Writes as much of `bytes` as `fd` takes before `deadline`; returns how many bytes were written.
  private static func write(
    _ bytes: [UInt8], to fd: Int32, isRegular: Bool, deadline: ContinuousClock.Instant
  )
    -> Int
  {
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        var chunk = raw.count - offset
        if !isRegular {
          // A write of at most PIPE_BUF bytes to a pipe that polls writable does not block.
          chunk = min(chunk, Int(PIPE_BUF))
          let left = deadline - ContinuousClock.now
          let millis = left <= .zero ? 0 : Int32(clamping: left.components.seconds * 1000 + 1)
          var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
          let ready = poll(&poller, 1, millis)
          if ready < 0 && errno == EINTR { continue }
          guard ready > 0, poller.revents & Int16(POLLOUT) != 0 else { return offset }
        }
        let n = Glibc.write(fd, raw.baseAddress! + offset, chunk)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return offset }
        offset += n
      }
      return offset
    }
  }
}
