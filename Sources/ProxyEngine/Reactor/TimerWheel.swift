/// A hashed timing wheel with intrusive nodes, one per worker (the reactor's timers: connect, idle, request
/// and drain timeouts). Times are milliseconds on the reactor's monotonic clock.
///
/// - A timer is created once per owner (a connection makes its timers when it is set up) and then armed,
///   re-armed and cancelled in O(1) with no allocation: the nodes live in one array and link by index.
/// - Re-arming later is lazy, as in Netty's idle handlers: a node already linked earlier only records the
///   new deadline; when its bucket comes round it is re-linked where the deadline falls. A connection that
///   pushes its idle timeout forward on every read therefore costs one store per read.
/// - `expire(upTo:into:)` does not call anyone: it appends the due timers' owners to an array the caller
///   keeps, so handlers run after the wheel is consistent and may arm or cancel timers freely.
/// - The wheel keeps a lower bound of the earliest deadline, so the reactor can sleep until then instead of
///   waking every tick.
package struct TimerWheel {
  /// One timer: who owns it, which of the owner's timers it is, and where it is linked.
  private struct Node {
    var owner: UInt64
    var kind: UInt32
    var armed = false
    /// When the timer fires.
    var deadline: Int64 = 0
    /// The time the node's bucket was chosen for (≤ deadline when re-armed lazily).
    var linkedAt: Int64 = 0
    var next: Int32 = -1
    var previous: Int32 = -1
    var inUse = true
  }

  /// A due timer, as handed back by `expire`.
  package struct Expired: Equatable {
    package var owner: UInt64
    package var kind: UInt32
    package var timer: TimerID
  }

  private static let bucketCount = 4096
  private static let mask = Int64(bucketCount - 1)

  private var nodes: [Node] = []
  private var freeNodes: [Int32] = []
  private var heads = [Int32](repeating: -1, count: TimerWheel.bucketCount)
  /// Every bucket up to this time has been processed.
  private var processedUpTo: Int64
  /// No armed timer fires before this (a lower bound; `.max` when none is armed).
  private var earliest: Int64 = .max
  package private(set) var armedCount = 0

  package init(now: Int64) { processedUpTo = now }

  /// A new, disarmed timer for `owner`; `kind` tells the owner's timers apart.
  package mutating func makeTimer(owner: UInt64, kind: UInt32) -> TimerID {
    if let index = freeNodes.popLast() {
      nodes[Int(index)] = Node(owner: owner, kind: kind)
      return TimerID(index: index)
    }
    nodes.append(Node(owner: owner, kind: kind))
    return TimerID(index: Int32(nodes.count - 1))
  }

  /// Disarms the timer and gives its node back; the ID must not be used again.
  package mutating func destroy(_ timer: TimerID) {
    guard isValid(timer) else { return }
    cancel(timer)
    nodes[Int(timer.index)].inUse = false
    freeNodes.append(timer.index)
  }

  package func isArmed(_ timer: TimerID) -> Bool { isValid(timer) && nodes[Int(timer.index)].armed }

  /// Arms (or re-arms) `timer` to fire at `deadline`; a deadline in the past fires at the next expiry.
  package mutating func arm(_ timer: TimerID, at deadline: Int64) {
    guard isValid(timer) else { return }
    let index = Int(timer.index)
    if nodes[index].armed {
      if deadline >= nodes[index].linkedAt {
        nodes[index].deadline = deadline  // lazily: re-linked when its bucket comes round
        return
      }
      unlink(timer.index)
    } else {
      armedCount += 1
      nodes[index].armed = true
    }
    nodes[index].deadline = deadline
    link(timer.index, at: max(deadline, processedUpTo + 1))
  }

  package mutating func cancel(_ timer: TimerID) {
    guard isArmed(timer) else { return }
    unlink(timer.index)
    nodes[Int(timer.index)].armed = false
    armedCount -= 1
  }

  /// Moves time to `now`: every timer whose deadline is ≤ `now` is disarmed and appended to `expired`.
  package mutating func expire(upTo now: Int64, into expired: inout [Expired]) {
    guard now > processedUpTo else { return }
    guard armedCount > 0, earliest <= now else {
      processedUpTo = now
      return
    }
    // Visit each bucket between the last expiry and now once (all of them if more than a turn passed).
    let first = max(processedUpTo + 1, earliest)
    let steps = min(now - first + 1, Int64(Self.bucketCount))
    var time = first
    for _ in 0..<steps {
      let bucket = Int(time & Self.mask)
      var index = heads[bucket]
      heads[bucket] = -1
      while index >= 0 {
        let node = nodes[Int(index)]
        let next = node.next
        nodes[Int(index)].next = -1
        nodes[Int(index)].previous = -1
        if node.deadline <= now {
          nodes[Int(index)].armed = false
          armedCount -= 1
          expired.append(Expired(owner: node.owner, kind: node.kind, timer: TimerID(index: index)))
        } else if node.linkedAt <= now {
          link(index, at: node.deadline)  // re-armed later since it was linked, or a later turn
        } else {
          link(index, at: node.linkedAt)  // a later turn of the wheel: stays in this bucket
        }
        index = next
      }
      time += 1
    }
    processedUpTo = now
    recomputeEarliest()
  }

  /// Milliseconds from `now` until the earliest timer may fire, for epoll_wait: -1 when nothing is armed,
  /// 0 when something is due.
  package func timeout(from now: Int64) -> Int32 {
    guard armedCount > 0 else { return -1 }
    let wait = earliest - now
    return wait <= 0 ? 0 : Int32(clamping: wait)
  }

  // MARK: Private

  private func isValid(_ timer: TimerID) -> Bool {
    timer.index >= 0 && Int(timer.index) < nodes.count && nodes[Int(timer.index)].inUse
  }

  private mutating func link(_ index: Int32, at time: Int64) {
    let bucket = Int(time & Self.mask)
    let head = heads[bucket]
    nodes[Int(index)].linkedAt = time
    nodes[Int(index)].previous = -1
    nodes[Int(index)].next = head
    if head >= 0 { nodes[Int(head)].previous = index }
    heads[bucket] = index
    if time < earliest { earliest = time }
  }

  private mutating func unlink(_ index: Int32) {
    let node = nodes[Int(index)]
    if node.previous >= 0 {
      nodes[Int(node.previous)].next = node.next
    } else {
      let bucket = Int(node.linkedAt & Self.mask)
      if heads[bucket] == index { heads[bucket] = node.next }
    }
    if node.next >= 0 { nodes[Int(node.next)].previous = node.previous }
    nodes[Int(index)].next = -1
    nodes[Int(index)].previous = -1
  }

  /// After an expiry: the smallest link time of any node (every one is after `processedUpTo`). Buckets are
  /// scanned in time order and the scan stops once it passes the smallest link time seen, so it reads only
  /// the nodes linked before the next firing (more on a wheel crowded with far timers).
  private mutating func recomputeEarliest() {
    earliest = .max
    guard armedCount > 0 else { return }
    var time = processedUpTo + 1
    for _ in 0..<Self.bucketCount {
      if time > earliest { return }
      var index = heads[Int(time & Self.mask)]
      while index >= 0 {
        earliest = min(earliest, nodes[Int(index)].linkedAt)
        index = nodes[Int(index)].next
      }
      time += 1
    }
  }
}

/// A timer of the wheel (an index into its nodes).
package struct TimerID: Hashable, Sendable {
  package let index: Int32
  package static let none = TimerID(index: -1)
}
