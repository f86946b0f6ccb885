import NIOCore
import Testing

@testable import ProxyCore

/// A deterministic generator (SplitMix64) so the gradual drain's probabilities can be counted.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("Drain state: immediate and gradual")
struct DrainStateTests {
  /// Fraction of `samples` connections told to close at `elapsed` into a 10 s gradual drain.
  func closeFraction(_ drain: DrainState, at elapsed: TimeAmount, samples: Int = 2000) -> Double {
    var generator = SplitMix64(state: 42)
    let now = NIODeadline.now() + elapsed
    let closed = (0..<samples).filter { _ in drain.shouldClose(.inbound, now: now, using: &generator) }.count
    return Double(closed) / Double(samples)
  }

  @Test func notDrainingNeverCloses() {
    #expect(!DrainState().shouldClose(.inbound))
  }

  @Test func immediateClosesEverything() {
    let drain = DrainState()
    drain.start(inboundOnly: true, gradual: false, drainTime: .seconds(10))
    #expect(closeFraction(drain, at: .zero) == 1)
    #expect(!drain.shouldClose(.outbound))
  }

  @Test func gradualRampsFromZeroToOne() {
    let drain = DrainState()
    drain.start(inboundOnly: false, gradual: true, drainTime: .seconds(10))
    #expect(closeFraction(drain, at: .zero) < 0.01)
    let quarter = closeFraction(drain, at: .milliseconds(2500))
    let threeQuarters = closeFraction(drain, at: .milliseconds(7500))
    #expect(abs(quarter - 0.25) < 0.05, "\(quarter)")
    #expect(abs(threeQuarters - 0.75) < 0.05, "\(threeQuarters)")
    #expect(closeFraction(drain, at: .seconds(11)) == 1)
  }
}
