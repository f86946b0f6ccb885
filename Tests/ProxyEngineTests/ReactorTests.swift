import Synchronization
import Testing

@testable import ProxyEngine

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Reactor: epoll loop, mailbox, timers, stale events")
struct ReactorTests {
  @Test("work posted from other threads runs on the reactor's thread, in order per poster")
  func posting() throws {
    let thread = try ReactorThread(name: "posting")
    defer { thread.stopAndJoin() }
    let seen = Mutex<[Int]>([])
    DispatchQueueFree.concurrentPerform(iterations: 4) { poster in
      for index in 0..<250 {
        thread.remote.post { _ in seen.withLock { $0.append(poster * 1000 + index) } }
      }
    }
    let count = try thread.sync { _ in seen.withLock { $0.count } }
    #expect(count == 1000)
    let values = seen.withLock { $0 }
    for poster in 0..<4 {
      let mine = values.filter { $0 / 1000 == poster }
      #expect(mine == mine.sorted())
    }
  }

  @Test("the reactor sleeps until its next timer, not longer and not in a busy loop")
  func sleepsUntilTimer() throws {
    let reactor = try Reactor(name: "timers")
    final class Handle: ReactorHandle {
      var fired: [UInt32] = []
      func handleIO(_ events: UInt32) {}
      func handleTimer(kind: UInt32) { fired.append(kind) }
      func reactorWillStop() {}
    }
    let handle = Handle()
    let pair = socketPair()
    defer {
      close(pair.ours)
      close(pair.peer)
    }
    let token = try reactor.register(handle, fd: pair.ours, interest: 0)
    let timer = reactor.makeTimer(owner: token, kind: 4)
    reactor.arm(timer, afterMilliseconds: 50)
    let start = MonotonicClock.milliseconds()
    var wakeUps = 0
    while handle.fired.isEmpty, MonotonicClock.milliseconds() - start < 2000 {
      reactor.runOnce(timeoutMilliseconds: nil)
      wakeUps += 1
    }
    let elapsed = MonotonicClock.milliseconds() - start
    #expect(handle.fired == [4])
    #expect(elapsed >= 50 && elapsed < 1000)
    #expect(wakeUps <= 3)
  }

  @Test("an event for a handle removed earlier in the same wake-up is dropped by its generation")
  func staleEventsDropped() throws {
    let reactor = try Reactor(name: "stale")
    final class Handle: ReactorHandle {
      var calls = 0
      var onIO: () -> Void = {}
      func handleIO(_ events: UInt32) {
        calls += 1
        onIO()
      }
      func handleTimer(kind: UInt32) {}
      func reactorWillStop() {}
    }
    let first = Handle()
    let second = Handle()
    let a = socketPair()
    let b = socketPair()
    defer { [a.ours, a.peer, b.peer].forEach { close($0) } }
    let tokenA = try reactor.register(first, fd: a.ours, interest: ReactorEvents.readable)
    let tokenB = try reactor.register(second, fd: b.ours, interest: ReactorEvents.readable)
    // Whichever runs first removes the other; the other's queued event must not reach it.
    first.onIO = {
      reactor.deregister(tokenB, fd: b.ours)
      close(b.ours)
    }
    second.onIO = { reactor.deregister(tokenA, fd: a.ours) }
    _ = write(a.peer, "x", 1)
    _ = write(b.peer, "y", 1)
    reactor.runOnce(timeoutMilliseconds: 100)
    #expect(first.calls + second.calls == 1)
  }
}

/// `concurrentPerform` without Foundation: one thread per iteration.
enum DispatchQueueFree {
  static func concurrentPerform(iterations: Int, _ body: @escaping @Sendable (Int) -> Void) {
    var threads: [pthread_t] = []
    for index in 0..<iterations {
      let box = Unmanaged.passRetained(Box { body(index) })
      var thread = pthread_t()
      pthread_create(
        &thread, nil,
        { raw in
          Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().run()
          return nil
        }, box.toOpaque())
      threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
  }

  final class Box {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
  }
}
