import Testing

@testable import ProxyEngine

@Suite("Slab: slots and generations")
struct SlabTests {
  @Test("a freed slot is reused with a new generation; the old token stops matching")
  func generationReuse() throws {
    var slab = Slab<String>()
    let firstInserted = slab.insert("a")
    let first = try #require(firstInserted)
    #expect(slab[first] == "a")
    #expect(slab.remove(first) == "a")
    #expect(slab[first] == nil)
    #expect(slab.remove(first) == nil)  // stale: no change
    let secondInserted = slab.insert("b")
    let second = try #require(secondInserted)
    #expect(second.slot == first.slot)
    #expect(second.generation == first.generation + 1)
    #expect(slab[first] == nil)
    #expect(slab[second] == "b")
    #expect(slab.count == 1)
  }

  @Test("the zero token never names anything, nor does a slot past the end")
  func zeroAndOutOfRange() throws {
    var slab = Slab<Int>()
    _ = slab.insert(1)
    #expect(slab[SlotToken(raw: 0)] == nil)
    #expect(slab[SlotToken(slot: 7, generation: 1)] == nil)
    #expect(!slab.contains(SlotToken(raw: 0)))
  }

  @Test("tokens round-trip through the 64-bit epoll data word")
  func tokenLayout() {
    let token = SlotToken(slot: 0xDEAD_BEEF, generation: 0x1234_5678)
    #expect(SlotToken(raw: token.raw) == token)
    #expect(token.slot == 0xDEAD_BEEF)
    #expect(token.generation == 0x1234_5678)
  }

  @Test("many inserts and removes keep the table dense and the count right")
  func churn() throws {
    var slab = Slab<Int>()
    var live: [SlotToken: Int] = [:]
    var order: [SlotToken] = []
    var generator = SplitMix(seed: 42)
    for step in 0..<20_000 {
      if order.isEmpty || generator.next() % 3 != 0 {
        let inserted = slab.insert(step)
        let token = try #require(inserted)
        #expect(live[token] == nil)
        live[token] = step
        order.append(token)
      } else {
        let index = Int(generator.next() % UInt64(order.count))
        let token = order.remove(at: index)
        #expect(slab.remove(token) == live.removeValue(forKey: token))
      }
    }
    #expect(slab.count == live.count)
    for (token, value) in live { #expect(slab[token] == value) }
    #expect(slab.capacity <= live.count + 20_000 / 3 + 100)
  }
}

/// A small deterministic generator for fixed-seed tests.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
