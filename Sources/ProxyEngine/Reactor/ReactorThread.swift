internal import Dispatch
internal import NIOConcurrencyHelpers

#if canImport(Glibc)
  internal import Glibc
#endif

/// A worker thread running one reactor until stopped. Other threads reach the reactor only by posting.
package final class ReactorThread: Sendable {
  package let name: String
  package let remote: ReactorRemote
  private let thread: NIOLockedValueBox<pthread_t?>

  /// Creates the reactor and starts its thread.
  package init(name: String) throws(SystemCallError) {
    let reactor = try Reactor(name: name)
    self.name = name
    self.remote = reactor.remote
    let box = Unmanaged.passRetained(ReactorBox(reactor))
    var handle = pthread_t()
    let result = pthread_create(
      &handle, nil,
      { raw in
        let box = Unmanaged<ReactorBox>.fromOpaque(raw!).takeRetainedValue()
        let reactor = box.take()
        reactor.run()
        return nil
      }, box.toOpaque())
    guard result == 0 else {
      box.release()
      throw SystemCallError("pthread_create", errno: result, context: name)
    }
    self.thread = NIOLockedValueBox(handle)
  }

  /// Runs `body` on the reactor and waits for its result (control plane and tests; never on a reactor).
  package func sync<T: Sendable>(_ body: @escaping @Sendable (Reactor) throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let result = NIOLockedValueBox<Result<T, any Error>?>(nil)
    let posted = remote.post { reactor in
      let outcome = Result { try body(reactor) }
      result.withLockedValue { $0 = outcome }
      done.signal()
    }
    guard posted else {
      throw SystemCallError("post", errno: ESHUTDOWN, context: "to stopped reactor \(name)")
    }
    done.wait()
    return try result.withLockedValue { $0! }.get()
  }

  /// Stops the reactor after its current wake-up and waits for the thread to end.
  package func stopAndJoin() {
    remote.stop()
    let handle = thread.withLockedValue { current -> pthread_t? in
      defer { current = nil }
      return current
    }
    if let handle { pthread_join(handle, nil) }
  }
}

/// Hands a reactor to its thread once.
private final class ReactorBox: @unchecked Sendable {
  private var reactor: Reactor?
  init(_ reactor: Reactor) { self.reactor = reactor }
  func take() -> Reactor {
    defer { reactor = nil }
    return reactor!
  }
}
