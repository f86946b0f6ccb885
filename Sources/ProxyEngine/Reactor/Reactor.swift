internal import CReactor
internal import NIOConcurrencyHelpers
package import NIOCore
internal import Synchronization

#if canImport(Glibc)
  internal import Glibc
#endif

/// Something the reactor dispatches to: a connection, a listening socket. Events name it by its
/// `SlotToken`; a stale token (the slot was freed, perhaps reused, since the event was queued) is dropped.
package protocol ReactorHandle: AnyObject {
  /// Readiness reported by epoll for the handle's fd (`ReactorEvents` bits).
  func handleIO(_ events: UInt32)
  /// A timer the handle made (`Reactor.makeTimer(owner:kind:)`) fired.
  func handleTimer(kind: UInt32)
  /// The reactor is stopping: close the fd now.
  func reactorWillStop()
}

/// epoll's event bits, as the reactor uses them.
package enum ReactorEvents {
  package static let readable = UInt32(CREACTOR_EPOLLIN)
  package static let writable = UInt32(CREACTOR_EPOLLOUT)
  package static let error = UInt32(CREACTOR_EPOLLERR)
  package static let hangUp = UInt32(CREACTOR_EPOLLHUP)
  /// Wake one of the epolls sharing a listening socket, not all (no SO_REUSEPORT).
  package static let exclusive = UInt32(CREACTOR_EPOLLEXCLUSIVE)
}

/// One worker's event loop: epoll (level-triggered), a slab of handles indexed by the epoll data word, a
/// timer wheel, and an eventfd through which other threads post work. Everything a connection does runs on
/// its reactor's thread with direct calls; the only lock is the mailbox's, taken when something is posted.
///
/// Per event the steady path does no allocation: the event array, the slab and the expired-timer list are
/// reused. A handle removed while its own event is being handled stays alive until that call returns (the
/// dispatch holds a reference).
package final class Reactor {
  package let name: String
  /// The reactor's clock in milliseconds, read once per wake-up.
  package private(set) var now: Int64
  private var timers: TimerWheel
  private var handles = Slab<any ReactorHandle>()
  private let epollFD: Int32
  private let mailbox: ReactorMailbox
  private let events: UnsafeMutablePointer<creactor_event>
  private let eventCapacity: Int32 = 256
  private var expired: [TimerWheel.Expired] = []
  private var stopped = false
  /// Buffers for reads and pending writes, shared by this reactor's connections.
  package let buffers: BufferPool
  /// Handles waiting for a pass at the end of the current wake-up (`defer(_:)`).
  private var deferred: [any ReactorHandle] = []
  /// Per-worker state of the filters that run here (the HTTP connection pools), by owner.
  private var locals: [ObjectIdentifier: AnyObject] = [:]

  private static let add: Int32 = 1
  private static let delete: Int32 = 2
  private static let modify: Int32 = 3

  /// The wake-up token for the mailbox's eventfd (never a slab token: generation 0 is never issued).
  private static let mailboxToken = UInt64(UInt32.max)

  package init(name: String) throws(SystemCallError) {
    let epollFD = creactor_epoll_create()
    guard epollFD >= 0 else { throw SystemCallError("epoll_create1", errno: currentErrno()) }
    let wakeFD = creactor_eventfd()
    guard wakeFD >= 0 else {
      let code = currentErrno()
      close(epollFD)
      throw SystemCallError("eventfd", errno: code)
    }
    guard creactor_epoll_ctl(epollFD, Self.add, wakeFD, ReactorEvents.readable, Self.mailboxToken) == 0 else {
      let code = currentErrno()
      close(wakeFD)
      close(epollFD)
      throw SystemCallError("epoll_ctl(ADD eventfd)", errno: code)
    }
    self.name = name
    self.epollFD = epollFD
    self.mailbox = ReactorMailbox(wakeFD: wakeFD)
    self.events = .allocate(capacity: Int(eventCapacity))
    self.now = MonotonicClock.milliseconds()
    self.timers = TimerWheel(now: now)
    self.buffers = BufferPool()
  }

  deinit {
    events.deallocate()
    close(mailbox.wakeFD)
    close(epollFD)
  }

  /// A handle other threads use to post work to this reactor or stop it.
  package var remote: ReactorRemote { ReactorRemote(mailbox: mailbox) }

  /// The number of registered handles.
  package var handleCount: Int { handles.count }

  // MARK: Registration

  /// Registers `handle` for `fd` with the `ReactorEvents` in `interest` (level-triggered). The reactor keeps
  /// the handle alive until `deregister`.
  package func register(_ handle: any ReactorHandle, fd: Int32, interest: UInt32) throws(SystemCallError)
    -> SlotToken
  {
    guard let token = handles.insert(handle) else { throw SystemCallError("register", errno: ENOMEM) }
    guard creactor_epoll_ctl(epollFD, Self.add, fd, interest, token.raw) == 0 else {
      let code = currentErrno()
      handles.remove(token)
      throw SystemCallError("epoll_ctl(ADD)", errno: code, context: "fd \(fd)")
    }
    return token
  }

  /// Adds `handle` to the slab without watching an fd yet (a connection that does not read yet is added to
  /// epoll only when it first needs an event: one epoll_ctl instead of an ADD and a MOD).
  package func insert(_ handle: any ReactorHandle) throws(SystemCallError) -> SlotToken {
    guard let token = handles.insert(handle) else { throw SystemCallError("register", errno: ENOMEM) }
    return token
  }

  /// Starts watching `fd` for `token`'s handle (after `insert`).
  package func watch(_ token: SlotToken, fd: Int32, interest: UInt32) throws(SystemCallError) {
    guard creactor_epoll_ctl(epollFD, Self.add, fd, interest, token.raw) == 0 else {
      throw SystemCallError("epoll_ctl(ADD)", errno: currentErrno(), context: "fd \(fd)")
    }
  }

  /// Changes the events `fd` is watched for. Callers cache their interest and call this only when it changes.
  package func setInterest(_ token: SlotToken, fd: Int32, interest: UInt32) {
    // Fails only for an fd that is not registered, which is a bug of the caller; nothing to recover.
    _ = creactor_epoll_ctl(epollFD, Self.modify, fd, interest, token.raw)
  }

  /// Stops watching `fd` and forgets the handle (its pending events are dropped by generation). The caller
  /// closes the fd afterwards.
  package func deregister(_ token: SlotToken, fd: Int32) {
    guard handles.contains(token) else { return }
    _ = creactor_epoll_ctl(epollFD, Self.delete, fd, 0, 0)
    handles.remove(token)
  }

  /// Takes `fd` out of epoll but keeps its handle (a hang-up reported while the handle does not read would
  /// otherwise wake the reactor in a loop); `unpark` puts it back.
  package func park(_ token: SlotToken, fd: Int32) {
    _ = creactor_epoll_ctl(epollFD, Self.delete, fd, 0, 0)
  }

  package func unpark(_ token: SlotToken, fd: Int32, interest: UInt32) {
    _ = creactor_epoll_ctl(epollFD, Self.add, fd, interest, token.raw)
  }

  /// Forgets a handle whose fd is not in epoll (parked).
  package func forget(_ token: SlotToken) { handles.remove(token) }

  // MARK: Timers

  /// A disarmed timer that calls `owner`'s handle with `kind` when it fires.
  package func makeTimer(owner: SlotToken, kind: UInt32) -> TimerID {
    timers.makeTimer(owner: owner.raw, kind: kind)
  }

  /// Arms `timer` to fire `milliseconds` from now (re-arming later costs one store).
  package func arm(_ timer: TimerID, afterMilliseconds milliseconds: Int64) {
    timers.arm(timer, at: now &+ max(0, milliseconds))
  }

  /// Arms `timer` to fire after `delay` (whole milliseconds, negative as zero).
  package func arm(_ timer: TimerID, after delay: TimeAmount) {
    arm(timer, afterMilliseconds: max(0, delay.nanoseconds / 1_000_000))
  }

  package func cancel(_ timer: TimerID) { timers.cancel(timer) }

  package func destroy(_ timer: TimerID) { timers.destroy(timer) }

  package func isArmed(_ timer: TimerID) -> Bool { timers.isArmed(timer) }

  package var armedTimers: Int { timers.armedCount }

  // MARK: Worker-local state

  /// The state `owner` keeps on this worker (created by `make` on first use). Only this reactor's thread
  /// touches it, so it needs no lock; it lives as long as the reactor.
  package func local<Value: AnyObject>(for owner: AnyObject, make: () -> Value) -> Value {
    let key = ObjectIdentifier(owner)
    if let value = locals[key] as? Value { return value }
    let value = make()
    locals[key] = value
    return value
  }

  // MARK: Deferred work

  /// Calls `handle.handleIO(0)` once more at the end of this wake-up (after every ready event): for work
  /// a handle postpones so that a burst of events is handled together.
  package func runAtEndOfWakeUp(_ handle: any ReactorHandle) { deferred.append(handle) }

  // MARK: Loop

  /// Runs until `stop()` (on this thread) or `remote.stop()` (from any thread).
  package func run() {
    stopped = false
    while !stopped { runOnce(timeoutMilliseconds: nil) }
    closeAll()
    // Work posted meanwhile still runs (whoever waits for it is released); later posts are refused.
    for task in mailbox.close() { task(self) }
  }

  /// Calls `body` with every registered handle (control-plane work such as closing drained connections;
  /// not for the data path).
  package func forEachHandle(_ body: (any ReactorHandle) -> Void) {
    handles.forEach { _, handle in body(handle) }
  }

  /// Closes every registered handle (at the end of `run`, and for tests that drive `runOnce`).
  package func closeAll() {
    var open: [any ReactorHandle] = []
    handles.forEach { _, handle in open.append(handle) }
    for handle in open { handle.reactorWillStop() }
  }

  package func stop() { stopped = true }

  /// One wake-up: waits for events (at most `timeoutMilliseconds`, or until the next timer), dispatches
  /// them, fires due timers and runs posted tasks.
  package func runOnce(timeoutMilliseconds: Int32?) {
    var timeout = timers.timeout(from: now)
    if let limit = timeoutMilliseconds { timeout = timeout < 0 ? limit : min(timeout, limit) }
    let ready = creactor_epoll_wait(epollFD, events, eventCapacity, timeout)
    now = MonotonicClock.milliseconds()
    if ready > 0 {
      for index in 0..<Int(ready) {
        let event = events[index]
        let raw = event.token
        if raw == Self.mailboxToken {
          runMailbox()
          continue
        }
        guard let handle = handles[SlotToken(raw: raw)] else { continue }  // freed since it was queued
        handle.handleIO(event.events)
      }
    }
    fireTimers()
    while !deferred.isEmpty {
      let pending = deferred
      deferred.removeAll(keepingCapacity: true)
      for handle in pending { handle.handleIO(0) }
    }
  }

  private func fireTimers() {
    timers.expire(upTo: now, into: &expired)
    guard !expired.isEmpty else { return }
    for timer in expired {
      guard let handle = handles[SlotToken(raw: timer.owner)] else { continue }
      handle.handleTimer(kind: timer.kind)
    }
    expired.removeAll(keepingCapacity: true)
  }

  private func runMailbox() {
    var counter: UInt64 = 0
    _ = read(mailbox.wakeFD, &counter, 8)
    for task in mailbox.take() { task(self) }
    if mailbox.stopRequested { stopped = true }
  }
}

/// Posts work to a reactor from any thread.
package struct ReactorRemote: Sendable {
  fileprivate let mailbox: ReactorMailbox

  /// Runs `task` on the reactor's thread at its next wake-up; false (and not run) once the reactor has
  /// stopped.
  @discardableResult
  package func post(_ task: @escaping @Sendable (Reactor) -> Void) -> Bool { mailbox.post(task) }

  /// Makes the reactor's `run()` return after its current wake-up.
  package func stop() { mailbox.requestStop() }
}

/// Tasks for a reactor and the eventfd that wakes it.
final class ReactorMailbox: Sendable {
  let wakeFD: Int32
  /// Tasks not yet run; nil once the reactor has stopped. A pthread mutex (NIOLock), not Synchronization's
  /// Mutex: ThreadSanitizer sees pthread locks, while the stdlib's futex lock made it report a race on the
  /// tasks it protects.
  private let tasks = NIOLockedValueBox<[@Sendable (Reactor) -> Void]?>([])
  private let stop = Atomic<Bool>(false)

  init(wakeFD: Int32) { self.wakeFD = wakeFD }

  func post(_ task: @escaping @Sendable (Reactor) -> Void) -> Bool {
    let accepted = tasks.withLockedValue { current -> Bool in
      guard current != nil else { return false }
      current!.append(task)
      return true
    }
    if accepted { wake() }
    return accepted
  }

  /// Refuses further posts and returns what is left to run.
  func close() -> [@Sendable (Reactor) -> Void] {
    tasks.withLockedValue { current in
      defer { current = nil }
      return current ?? []
    }
  }

  func requestStop() {
    stop.store(true, ordering: .releasing)
    wake()
  }

  var stopRequested: Bool { stop.load(ordering: .acquiring) }

  func take() -> [@Sendable (Reactor) -> Void] {
    tasks.withLockedValue { current in
      guard let pending = current else { return [] }
      current = []
      return pending
    }
  }

  private func wake() {
    var one: UInt64 = 1
    _ = write(wakeFD, &one, 8)
  }
}
