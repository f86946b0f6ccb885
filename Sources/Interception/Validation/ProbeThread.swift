internal import Glibc

/// Runs blocking probe work on a short-lived thread of its own and hands the result back to async code.
///
/// A fresh thread is needed twice over: the probe switches the thread's fsuid/fsgid, which must not
/// leak into a shared thread, and it blocks in poll(2) for up to the probe's timeout, which must not
/// stall Swift's cooperative pool. The new thread inherits the creating thread's network namespace.
enum ProbeThread {
  /// Runs `body` on a new detached thread and returns its result.
  static func run<T: Sendable>(
    _ body: @escaping @Sendable () -> T
  ) async throws(InterceptionError) -> T {
    let outcome: Result<T, InterceptionError> = await withCheckedContinuation { continuation in
      let work = Work {
        let value = body()
        continuation.resume(returning: .success(value))
      }
      let argument = Unmanaged.passRetained(work).toOpaque()
      var thread = pthread_t()
      let status = pthread_create(
        &thread, nil,
        { argument in
          guard let argument else { return nil }
          Unmanaged<Work>.fromOpaque(argument).takeRetainedValue().run()
          return nil
        }, argument)
      guard status == 0 else {
        Unmanaged<Work>.fromOpaque(argument).release()
        continuation.resume(
          returning: .failure(
            InterceptionError(
              .unsupported, "cannot start a probe thread: \(ProbeErrno.describe(status))")))
        return
      }
      pthread_detach(thread)
    }
    return try outcome.get()
  }

  /// The closure a new thread runs; retained across pthread_create by the thread argument.
  private final class Work: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
  }
}
