internal import OrderedCollections

/// A strict JSON (RFC 8259) parser for untrusted request bodies: no YAML, so no anchors and aliases to
/// expand ("billion laughs"), no tags, no implicit types. Object key order is kept and numbers keep their
/// text, as everywhere in ``JSONValue``; duplicate keys keep the last value (as Go's decoder, which the API
/// server uses). Nesting deeper than ``maxDepth`` is an error rather than a deep recursion.
extension JSONValue {
  package static let maxDepth = 512

  /// Parses exactly one JSON value (surrounding whitespace allowed) from UTF-8 bytes.
  package static func parseJSON(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
    var parser = StrictJSONParser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.value(depth: 0)
    parser.skipWhitespace()
    guard parser.index == bytes.count else { throw parser.fail("unexpected data after the JSON value") }
    return value
  }
}

private struct StrictJSONParser {
  let bytes: [UInt8]
  var index = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  func fail(_ message: String) -> JSONValue.ParseError {
    JSONValue.ParseError(message: "not valid JSON at byte \(index): \(message)")
  }

  mutating func skipWhitespace() {
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
  }

  mutating func expect(_ literal: String) throws(JSONValue.ParseError) {
    for byte in literal.utf8 {
      guard index < bytes.count, bytes[index] == byte else { throw fail("expected \(literal)") }
      index += 1
    }
  }

  mutating func value(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
    guard depth < JSONValue.maxDepth else { throw fail("nested deeper than \(JSONValue.maxDepth) levels") }
    guard index < bytes.count else { throw fail("unexpected end of input") }
    switch bytes[index] {
    case UInt8(ascii: "{"):
      index += 1
      var object = OrderedDictionary<String, JSONValue>()
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(object)
      }
      while true {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a key") }
        let key = try string()
        skipWhitespace()
        try expect(":")
        skipWhitespace()
        object[key] = try value(depth: depth + 1)
        skipWhitespace()
        guard index < bytes.count else { throw fail("unterminated object") }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
          continue
        }
        try expect("}")
        return .object(object)
      }
    case UInt8(ascii: "["):
      index += 1
      var array: [JSONValue] = []
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array(array)
      }
      while true {
        skipWhitespace()
        array.append(try value(depth: depth + 1))
        skipWhitespace()
        guard index < bytes.count else { throw fail("unterminated array") }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
          continue
        }
        try expect("]")
        return .array(array)
      }
    case UInt8(ascii: "\""):
      return .string(try string())
    case UInt8(ascii: "t"):
      try expect("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try expect("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try expect("null")
      return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      return .number(try number())
    default:
      throw fail("unexpected character")
    }
  }

  /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as its text.
  mutating func number() throws(JSONValue.ParseError) -> String {
    let start = index
    func digits() -> Int {
      let from = index
      while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
      return index - from
    }
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard index < bytes.count else { throw fail("incomplete number") }
    if bytes[index] == UInt8(ascii: "0") {
      index += 1
    } else if digits() == 0 {
      throw fail("invalid number")
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      index += 1
      guard digits() > 0 else { throw fail("invalid number") }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
        index += 1
      }
      guard digits() > 0 else { throw fail("invalid number") }
    }
    return String(decoding: bytes[start..<index], as: UTF8.self)
  }

  /// A string literal; the opening quote is at `index`.
  mutating func string() throws(JSONValue.ParseError) -> String {
    index += 1
    var scalars = String.UnicodeScalarView()
    var run = index
    func flush(_ end: Int) {
      if end > run { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
    }
    while index < bytes.count {
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\""):
        flush(index)
        index += 1
        return String(scalars)
      case UInt8(ascii: "\\"):
        flush(index)
        index += 1
        guard index < bytes.count else { throw fail("unterminated escape") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""): scalars.append("\"")
        case UInt8(ascii: "\\"): scalars.append("\\")
        case UInt8(ascii: "/"): scalars.append("/")
        case UInt8(ascii: "b"): scalars.append("\u{08}")
        case UInt8(ascii: "f"): scalars.append("\u{0C}")
        case UInt8(ascii: "n"): scalars.append("\n")
        case UInt8(ascii: "r"): scalars.append("\r")
        case UInt8(ascii: "t"): scalars.append("\t")
        case UInt8(ascii: "u"):
          var code = try hex4()
          if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
            bytes[index + 1] == UInt8(ascii: "u")
          {
            let save = index
            index += 2
            let low = try hex4()
            if (0xDC00..<0xE000).contains(low) {
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else {
              index = save
            }
          }
          // A lone surrogate becomes U+FFFD, as Go's decoder does.
          scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
        default:
          throw fail("invalid escape")
        }
        run = index
      case 0x00..<0x20:
        throw fail("control character in a string")
      default:
        index += 1
      }
    }
    throw fail("unterminated string")
  }

  mutating func hex4() throws(JSONValue.ParseError) -> UInt32 {
    guard index + 4 <= bytes.count else { throw fail("incomplete \\u escape") }
    var value: UInt32 = 0
    for byte in bytes[index..<index + 4] {
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw fail("invalid \\u escape")
      }
      value = value << 4 | UInt32(digit)
    }
    index += 4
    return value
  }
}
