/// Byte classes of RFC 9110/9112 and small helpers over raw bytes, shared by the codec's parts.
enum HTTP1Bytes {
  static let cr: UInt8 = 0x0D
  static let lf: UInt8 = 0x0A
  static let sp: UInt8 = 0x20
  static let htab: UInt8 = 0x09
  static let colon: UInt8 = 0x3A

  // tchar (RFC 9110 §5.6.2) as a 128-bit set.
  private static let tcharLow: UInt64 = 0x03ff_6cfa_0000_0000
  private static let tcharHigh: UInt64 = 0x57ff_ffff_c7ff_fffe

  @inline(__always)
  static func isTokenChar(_ byte: UInt8) -> Bool {
    if byte < 64 { return tcharLow & (1 &<< UInt64(byte)) != 0 }
    if byte < 128 { return tcharHigh & (1 &<< UInt64(byte &- 64)) != 0 }
    return false
  }

  /// field-vchar / SP / HTAB / obs-text: everything but CTLs other than HTAB, and DEL.
  @inline(__always)
  static func isFieldValueChar(_ byte: UInt8) -> Bool {
    byte >= 0x20 ? byte != 0x7F : byte == htab
  }

  /// A request-target byte: visible ASCII only (no SP, CTL, DEL or non-ASCII).
  @inline(__always)
  static func isTargetChar(_ byte: UInt8) -> Bool {
    byte > 0x20 && byte < 0x7F
  }

  @inline(__always)
  static func isOWS(_ byte: UInt8) -> Bool { byte == sp || byte == htab }

  @inline(__always)
  static func lowercased(_ byte: UInt8) -> UInt8 {
    byte &- 0x41 < 26 ? byte | 0x20 : byte
  }

  @inline(__always)
  static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: byte &- 0x30
    case 0x41...0x46: byte &- 0x41 &+ 10
    case 0x61...0x66: byte &- 0x61 &+ 10
    default: nil
    }
  }

  /// Case-insensitive comparison of `bytes[range]` with a lowercase ASCII literal.
  @inline(__always)
  static func equalsLowercase(
    _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ literal: StaticString
  ) -> Bool {
    guard end - start == literal.utf8CodeUnitCount else { return false }
    let lit = literal.utf8Start
    var i = 0
    while i < end - start {
      if lowercased(bytes[start + i]) != lit[i] { return false }
      i += 1
    }
    return true
  }

  /// Case-insensitive comparison of `bytes[range]` with arbitrary UTF-8 (ASCII folding only).
  /// `equalsIgnoringASCIICase` against a lower-case literal: no String access on the hot path.
  static func equalsIgnoringASCIICase(
    _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, lowercase other: StaticString
  ) -> Bool {
    guard other.utf8CodeUnitCount == end - start else { return false }
    let utf8 = other.utf8Start
    for i in 0..<(end - start) where lowercased(bytes[start + i]) != utf8[i] { return false }
    return true
  }

  static func equalsIgnoringASCIICase(
    _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ other: String
  ) -> Bool {
    var other = other
    return other.withUTF8 { utf8 in
      guard utf8.count == end - start else { return false }
      for i in 0..<utf8.count where lowercased(bytes[start + i]) != lowercased(utf8[i]) {
        return false
      }
      return true
    }
  }

  /// Calls `body` with each comma-separated, OWS-trimmed, non-empty list element's range.
  static func forEachListElement(
    _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ body: (Int, Int) -> Void
  ) {
    var i = start
    while i < end {
      var elementEnd = i
      while elementEnd < end && bytes[elementEnd] != 0x2C { elementEnd += 1 }
      var s = i
      var e = elementEnd
      while s < e && isOWS(bytes[s]) { s += 1 }
      while e > s && isOWS(bytes[e - 1]) { e -= 1 }
      if s < e { body(s, e) }
      i = elementEnd + 1
    }
  }

  static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
  }
}
