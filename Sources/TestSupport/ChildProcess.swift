package import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a program to completion with a bound on how long it may take, for tests.
///
/// `Process.waitUntilExit` has no bound, and under the test runner's blocked signal mask Foundation may
/// never notice an exit; this reaps with `waitpid` itself and SIGKILLs the child when `timeout` passes,
/// so a hung tool fails one test instead of the whole run. Output is read on threads of its own, so a
/// child writing a lot to both pipes cannot block.
package struct ChildProcess: Sendable {
  package enum Termination: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// Still running at the deadline: killed.
    case timedOut

    package var description: String {
      switch self {
      case .exited(let code): "exit status \(code)"
      case .signaled(let signal): "killed by signal \(signal)"
      case .timedOut: "timed out (killed)"
      }
    }

    /// The exit status, or 128 + the signal, or -1 for a timeout: never 0 unless the child exited 0.
    package var exitStatusOrFailure: Int32 {
      switch self {
      case .exited(let code): code
      case .signaled(let signal): 128 + signal
      case .timedOut: -1
      }
    }
  }

  package var termination: Termination
  package var stdout: Data
  package var stderr: Data

  /// The exit status; nil when the child was killed by a signal or timed out.
  package var exitStatus: Int32? {
    if case .exited(let code) = termination { return code }
    return nil
  }
  package var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
  package var stderrText: String { String(decoding: stderr, as: UTF8.self) }

  /// Runs `path arguments`, feeding `input` on standard input, and waits at most `timeout`.
  package static func run(
    _ path: String, _ arguments: [String], input: Data? = nil, environment: [String: String]? = nil,
    currentDirectory: String? = nil, timeout: Duration = .seconds(60)
  ) throws -> ChildProcess {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    let inPipe = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try process.run()
    let outReader = PipeReader(out.fileHandleForReading)
    let errReader = PipeReader(err.fileHandleForReading)
    if let input {
      let writer = inPipe.fileHandleForWriting
      Thread {
        try? writer.write(contentsOf: input)
        try? writer.close()
      }.start()
    }
    let termination = reap(process, timeout: timeout)
    return ChildProcess(
      termination: termination, stdout: outReader.wait(), stderr: errReader.wait())
  }

  /// Waits (bounded) for `process` to exit, reaping it with `waitpid` too; SIGKILLs it at the deadline.
  package static func reap(_ process: Process, timeout: Duration) -> Termination {
    let deadline = ContinuousClock.now + timeout
    let pid = process.processIdentifier
    while true {
      if !process.isRunning {
        return process.terminationReason == .exit
          ? .exited(process.terminationStatus) : .signaled(process.terminationStatus)
      }
      var status: Int32 = 0
      if waitpid(pid, &status, WNOHANG) == pid {
        return status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
      }
      if ContinuousClock.now >= deadline {
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return .timedOut
      }
      usleep(5_000)
    }
  }
}

/// Reads a pipe on a thread of its own until end-of-file, or until the child has exited and nothing more is
/// buffered: a write end that leaked into another child (one a parallel test spawned) must not hold the
/// reader until that child ends too.
private final class PipeReader: @unchecked Sendable {
  private let done = DispatchSemaphore(value: 0)
  private let lock = NSLock()
  private var data = Data()
  private var childExited = false

  init(_ handle: FileHandle) {
    let fd = handle.fileDescriptor
    Thread { [self] in
      var buffer = [UInt8](repeating: 0, count: 65536)
      while true {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, 50)
        if ready > 0 {
          let n = read(fd, &buffer, buffer.count)
          if n > 0 {
            lock.withLock { data.append(contentsOf: buffer[0..<n]) }
            continue
          }
          if n < 0 && errno == EINTR { continue }
          break  // end of file (or an error)
        }
        if ready < 0 && errno == EINTR { continue }
        if lock.withLock({ childExited }) { break }  // exited and nothing buffered
      }
      done.signal()
    }.start()
  }

  /// The output; call after the child has exited. Waits at most 10 s for the reader.
  func wait() -> Data {
    lock.withLock { childExited = true }
    _ = done.wait(timeout: .now() + 10)
    return lock.withLock { data }
  }
}
