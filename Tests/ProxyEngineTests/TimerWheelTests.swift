import Testing

@testable import ProxyEngine

@Suite("TimerWheel: hashed wheel with intrusive nodes")
struct TimerWheelTests {
  private func expire(_ wheel: inout TimerWheel, at now: Int64) -> [UInt64] {
    var expired: [TimerWheel.Expired] = []
    wheel.expire(upTo: now, into: &expired)
    return expired.map(\.owner)
  }

  @Test("timers fire at their deadline, not before, and only once")
  func firesAtDeadline() {
    var wheel = TimerWheel(now: 1000)
    let a = wheel.makeTimer(owner: 1, kind: 0)
    let b = wheel.makeTimer(owner: 2, kind: 0)
    wheel.arm(a, at: 1010)
    wheel.arm(b, at: 1020)
    #expect(wheel.timeout(from: 1000) == 10)
    #expect(expire(&wheel, at: 1009).isEmpty)
    #expect(expire(&wheel, at: 1010) == [1])
    #expect(!wheel.isArmed(a))
    #expect(wheel.timeout(from: 1010) == 10)
    #expect(expire(&wheel, at: 1100) == [2])
    #expect(expire(&wheel, at: 2000).isEmpty)
    #expect(wheel.timeout(from: 2000) == -1)
  }

  @Test("cancel is O(1) and a cancelled timer never fires")
  func cancel() {
    var wheel = TimerWheel(now: 0)
    let timers = (0..<10).map { wheel.makeTimer(owner: UInt64($0), kind: 0) }
    for timer in timers { wheel.arm(timer, at: 50) }  // all in one bucket
    wheel.cancel(timers[0])
    wheel.cancel(timers[5])
    wheel.cancel(timers[9])
    #expect(wheel.armedCount == 7)
    #expect(Set(expire(&wheel, at: 50)) == [1, 2, 3, 4, 6, 7, 8])
  }

  @Test("re-arming later is lazy but exact; re-arming earlier moves the timer")
  func rearm() {
    var wheel = TimerWheel(now: 0)
    let timer = wheel.makeTimer(owner: 7, kind: 3)
    wheel.arm(timer, at: 100)
    wheel.arm(timer, at: 300)  // later: recorded only
    #expect(expire(&wheel, at: 100).isEmpty)
    #expect(wheel.isArmed(timer))
    #expect(expire(&wheel, at: 299).isEmpty)
    #expect(expire(&wheel, at: 300) == [7])
    wheel.arm(timer, at: 500)
    wheel.arm(timer, at: 400)  // earlier: moved
    #expect(expire(&wheel, at: 400) == [7])
  }

  @Test("deadlines several turns of the wheel away fire on their turn, not on an earlier one")
  func longTimers() {
    var wheel = TimerWheel(now: 0)
    let far = wheel.makeTimer(owner: 1, kind: 0)
    wheel.arm(far, at: 4096 * 3 + 5)
    var now: Int64 = 0
    while now < 4096 * 3 {
      now += 997
      #expect(expire(&wheel, at: min(now, 4096 * 3 + 4)).isEmpty)
    }
    #expect(expire(&wheel, at: 4096 * 3 + 5) == [1])
  }

  @Test("a long sleep past many turns fires everything due exactly once")
  func longGap() {
    var wheel = TimerWheel(now: 0)
    for owner in 0..<100 {
      wheel.arm(wheel.makeTimer(owner: UInt64(owner), kind: 0), at: Int64(owner * 97))
    }
    let fired = expire(&wheel, at: 1_000_000)
    #expect(fired.count == 100)
    #expect(Set(fired).count == 100)
  }

  @Test("a deadline in the past fires at the next expiry")
  func pastDeadline() {
    var wheel = TimerWheel(now: 500)
    let timer = wheel.makeTimer(owner: 9, kind: 0)
    wheel.arm(timer, at: 10)
    #expect(wheel.timeout(from: 500) <= 1)
    #expect(expire(&wheel, at: 501) == [9])
  }

  @Test("destroyed timers' nodes are reused and the old ID does nothing")
  func destroyReuse() {
    var wheel = TimerWheel(now: 0)
    let a = wheel.makeTimer(owner: 1, kind: 0)
    wheel.arm(a, at: 10)
    wheel.destroy(a)
    #expect(wheel.armedCount == 0)
    let b = wheel.makeTimer(owner: 2, kind: 0)
    #expect(b == a)  // node reused
    wheel.arm(b, at: 10)
    #expect(expire(&wheel, at: 10) == [2])
  }

  @Test("random arms, re-arms and cancels agree with a simple model (fixed seed)")
  func againstModel() {
    var generator = SplitMix(seed: 7)
    var wheel = TimerWheel(now: 0)
    let timers = (0..<200).map { wheel.makeTimer(owner: UInt64($0), kind: 0) }
    var model: [Int: Int64] = [:]
    var now: Int64 = 0
    for _ in 0..<5_000 {
      let index = Int(generator.next() % 200)
      switch generator.next() % 4 {
      case 0, 1:
        let deadline = now + Int64(generator.next() % 20_000)
        wheel.arm(timers[index], at: deadline)
        model[index] = deadline
      case 2:
        wheel.cancel(timers[index])
        model[index] = nil
      default:
        now += 1 + Int64(generator.next() % 700)
        let fired = Set(expire(&wheel, at: now).map { Int($0) })
        let due = Set(model.filter { $0.value <= now }.map(\.key))
        #expect(fired == due)
        for index in due { model[index] = nil }
        // The sleep bound never overshoots the earliest deadline.
        if let earliest = model.values.min() {
          #expect(Int64(wheel.timeout(from: now)) <= max(0, earliest - now))
        }
      }
      #expect(wheel.armedCount == model.count)
    }
  }
}
