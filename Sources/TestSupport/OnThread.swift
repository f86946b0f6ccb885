import Foundation

/// Runs blocking work (a child process, an `openssl` call, a blocking socket loop) on a thread of its own.
/// Swift Testing runs tests on the cooperative pool, which has one thread per core (two on the CI machines):
/// a test that blocks one of them slows every other test in flight, and one that waits for something the
/// pool must run can stall until a timeout fires.
package func onThread<T>(_ body: @escaping () throws -> T) async throws -> T {
  let work = UncheckedTransfer(body)
  let result = try await withCheckedThrowingContinuation {
    (continuation: CheckedContinuation<UncheckedTransfer<T>, any Error>) in
    Thread { continuation.resume(with: Result { UncheckedTransfer(try work.value()) }) }.start()
  }
  return result.value
}

/// Hands a value to another thread; only one thread uses it at a time.
private struct UncheckedTransfer<Value>: @unchecked Sendable {
  var value: Value
  init(_ value: Value) { self.value = value }
}
