internal import Glibc

/// Why a thread could not join a network namespace.
struct NetnsError: Error, CustomStringConvertible {
  var description: String
}

/// Runs `body` on a new thread that first joins the network namespace `/var/run/netns/<name>`
/// (as created by `ip netns add <name>`), waits for that thread and returns `body`'s result.
///
/// Network namespace membership is per thread on Linux, so only that thread moves; the calling
/// thread and the rest of the test process stay where they are. Netlink sockets opened by
/// `body` belong to the joined namespace. The thread exits afterwards, so nothing else ever
/// runs in the namespace by accident.
func inNetworkNamespace<T: Sendable>(_ name: String, _ body: @Sendable () throws -> T) throws -> T {
  let path = "/var/run/netns/\(name)"
  return try withoutActuallyEscaping(body) { body throws -> T in
    let outcome = Outcome<T>()
    // The work item is released after the join below, before `body` stops being valid.
    let work = ThreadWork {
      outcome.value = Result {
        try joinNetworkNamespace(path)
        return try body()
      }
    }
    let context = Unmanaged.passRetained(work)
    var thread = pthread_t()
    let rc = pthread_create(
      &thread, nil,
      { raw in
        if let raw { Unmanaged<ThreadWork>.fromOpaque(raw).takeUnretainedValue().run() }
        return nil
      }, context.toOpaque())
    guard rc == 0 else {
      context.release()
      throw NetnsError(description: "pthread_create failed: \(String(cString: strerror(rc)))")
    }
    pthread_join(thread, nil)
    context.release()
    guard let value = outcome.value else {
      throw NetnsError(description: "namespace thread finished without a result")
    }
    return try value.get()
  }
}

/// Joins the network namespace bound at `path` with setns(2), for the calling thread only.
private func joinNetworkNamespace(_ path: String) throws {
  // The Glibc module does not export setns(2) (it is behind _GNU_SOURCE), so look it up.
  typealias SetNS = @convention(c) (Int32, Int32) -> Int32
  let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET from <linux/sched.h>
  guard let symbol = dlsym(nil, "setns") else {
    throw NetnsError(description: "setns(2) is not available in this C library")
  }
  let setns = unsafeBitCast(symbol, to: SetNS.self)
  let fd = open(path, O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else {
    throw NetnsError(description: "open \(path): \(String(cString: strerror(errno)))")
  }
  defer { close(fd) }
  guard setns(fd, cloneNewNet) == 0 else {
    throw NetnsError(description: "setns \(path): \(String(cString: strerror(errno)))")
  }
}

/// The closure a worker thread runs. Invariant: run exactly once, by the worker thread.
private final class ThreadWork {
  let run: () -> Void
  init(_ run: @escaping () -> Void) { self.run = run }
}

/// The worker's result. Invariant: written only by the worker, read only after pthread_join,
/// which orders the two accesses.
private final class Outcome<T> {
  var value: Result<T, any Error>?
}
