internal import Synchronization

#if canImport(Glibc)
  internal import Glibc
#endif

/// Buffered access-log files shared by all connections. Lines are appended under a short lock and written
/// by `flush()`, which the composition root calls every `--file-flush-interval-msec` (and at exit), so
/// the event loops never block on file I/O.
package final class AccessLogSink: Sendable {
  private struct File {
    var fd: Int32
    var buffer: [UInt8] = []
  }

  private let files = Mutex<[String: File]>([:])
  /// A buffer beyond this size is written at once by the next `flush()` caller.
  private let maxBuffered: Int

  /// Validation mode: `open` checks the directory is writable but creates nothing.
  private let validateOnly: Bool

  package init(maxBufferedBytes: Int = 64 * 1024, validateOnly: Bool = false) {
    self.maxBuffered = maxBufferedBytes
    self.validateOnly = validateOnly
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
          let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
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
      files[path] = File(fd: fd)
    }
  }

  package func append(_ line: String, to path: String) {
    files.withLock { files in
      files[path]?.buffer.append(contentsOf: line.utf8)
    }
  }

  /// Writes everything buffered. Safe to call from any thread; blocking writes happen outside the lock.
  package func flush() {
    let pending: [(Int32, [UInt8])] = files.withLock { files in
      var out: [(Int32, [UInt8])] = []
      for key in files.keys where !(files[key]!.buffer.isEmpty) {
        out.append((files[key]!.fd, files[key]!.buffer))
        files[key]!.buffer.removeAll(keepingCapacity: true)
      }
      return out
    }
    for (fd, bytes) in pending {
      bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
          let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
          if n < 0 && errno == EINTR { continue }
          if n <= 0 { return }
          offset += n
        }
      }
    }
  }
}
