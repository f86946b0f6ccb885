/// Names one occupant of a `Slab`: the slot index in the low 32 bits and the slot's generation in the high
/// 32 bits. It is the epoll data word and the timer owner of a registration, so an event that arrives for a
/// slot that was freed (and perhaps reused) since is recognised by its stale generation and dropped.
package struct SlotToken: Hashable, Sendable, CustomStringConvertible {
  package let raw: UInt64

  package init(raw: UInt64) { self.raw = raw }

  package init(slot: UInt32, generation: UInt32) {
    self.raw = UInt64(generation) << 32 | UInt64(slot)
  }

  package var slot: UInt32 { UInt32(truncatingIfNeeded: raw) }
  package var generation: UInt32 { UInt32(truncatingIfNeeded: raw >> 32) }

  package var description: String { "\(slot)/\(generation)" }
}

/// A table of values addressed by `SlotToken`: insert and remove in O(1), freed slots reused (most recently
/// freed first, which keeps the table dense), and a generation per slot that moves on at every removal so
/// old tokens stop matching. Generations start at 1, so a zero token never names anything.
package struct Slab<Element> {
  private var elements: [Element?] = []
  private var generations: [UInt32] = []
  private var freeSlots: [UInt32] = []

  package init() {}

  /// The number of occupied slots.
  package private(set) var count = 0

  /// The number of slots ever created (occupied or free).
  package var capacity: Int { elements.count }

  /// Stores `element` and returns its token. Fails only past 2^32 - 1 slots.
  package mutating func insert(_ element: Element) -> SlotToken? {
    let slot: UInt32
    if let reused = freeSlots.popLast() {
      slot = reused
      elements[Int(slot)] = element
    } else {
      guard elements.count < Int(UInt32.max) else { return nil }
      slot = UInt32(elements.count)
      elements.append(element)
      generations.append(1)
    }
    count += 1
    return SlotToken(slot: slot, generation: generations[Int(slot)])
  }

  /// The element `token` names, or nil when the slot is free or was reused since.
  package subscript(token: SlotToken) -> Element? {
    let slot = Int(token.slot)
    guard slot < elements.count, generations[slot] == token.generation else { return nil }
    return elements[slot]
  }

  package func contains(_ token: SlotToken) -> Bool {
    let slot = Int(token.slot)
    return slot < elements.count && generations[slot] == token.generation && elements[slot] != nil
  }

  /// Frees the slot `token` names and returns what it held; nil (and no change) for a stale token.
  @discardableResult
  package mutating func remove(_ token: SlotToken) -> Element? {
    let slot = Int(token.slot)
    guard slot < elements.count, generations[slot] == token.generation, let element = elements[slot] else {
      return nil
    }
    elements[slot] = nil
    // Generation 0 is skipped when the counter wraps, so a zero token stays invalid.
    generations[slot] = generations[slot] == UInt32.max ? 1 : generations[slot] + 1
    freeSlots.append(token.slot)
    count -= 1
    return element
  }

  /// Every occupied slot's token and element.
  package func forEach(_ body: (SlotToken, Element) -> Void) {
    for slot in elements.indices {
      if let element = elements[slot] {
        body(SlotToken(slot: UInt32(slot), generation: generations[slot]), element)
      }
    }
  }
}
