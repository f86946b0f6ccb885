internal import Synchronization

/// The first update of each dynamic source, which the server waits for before it starts its listeners.
final class InitializationTracker: Sendable {
  private let done = Mutex<Set<ResourceType>>([])

  func markDone(_ type: ResourceType) { _ = done.withLock { $0.insert(type) } }

  func isDone(_ type: ResourceType) -> Bool { done.withLock { $0.contains(type) } }

  /// Waits until `type` is marked done (or the task is cancelled).
  func wait(for type: ResourceType) async {
    _ = await poll(timeout: nil) { self.isDone(type) }
  }

  /// Polls `condition` every 10 ms until it holds (true) or `timeout` passed (false); nil waits forever
  /// (until cancelled).
  func poll(timeout: Duration?, _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = timeout.map { ContinuousClock.now + $0 }
    while !Task.isCancelled {
      if condition() { return true }
      if let deadline, ContinuousClock.now >= deadline { return false }
      try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
  }
}
