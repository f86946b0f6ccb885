/// Strict JSON (RFC 8259) for untrusted text (AdmissionReview bodies, bootstrap files, pod metadata): no
/// YAML, so no anchors and aliases to expand, no tags, no implicit types.
///
/// Invariants: exactly one value (surrounding whitespace allowed); numbers match RFC 8259's grammar (no
/// leading zeros, `+`, `.5`, `NaN`) and keep their text; strings are valid UTF-8 without control characters
/// and with escaped surrogates only in pairs; a key appears at most once per object (a duplicate is an
/// error, not a silent last-wins, so two readers of one document cannot disagree); nesting deeper than
/// ``maxDepth`` is an error rather than a deep recursion.
extension JSONValue {
  package static let maxDepth = 512

  /// Parses exactly one JSON value from UTF-8 bytes.
  package static func parseJSON(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
    var parser = StrictJSONParser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.value(depth: 0)
    parser.skipWhitespace()
    guard parser.index == bytes.count else { throw parser.fail("unexpected text after the JSON value") }
    return value
  }

  /// Parses exactly one JSON value.
  package static func parseJSON(_ text: String) throws(ParseError) -> JSONValue {
    try parseJSON(Array(text.utf8))
  }

  /// Compact JSON with `<`, `>` and `&` escaped, byte for byte as Go's `json.Marshal` prints it.
  package var jsonText: String { jsonText(pretty: false, escapingHTML: true) }

  /// Indented JSON (two spaces), as kubectl prints it.
  package var prettyJSONText: String { jsonText(pretty: true, escapingHTML: true) }

  /// JSON text: compact or indented by two spaces; `<`, `>` and `&` as `\u003c`… when `escapingHTML`.
  package func jsonText(pretty: Bool, escapingHTML: Bool) -> String {
    var out = ""
    write(into: &out, indent: pretty ? "  " : nil, level: 0, escapingHTML: escapingHTML)
    return out
  }

  /// A JSON string literal for `s`: `"`, `\` and control characters escaped, and `<`, `>`, `&` when
  /// `escapingHTML`.
  package static func quote(_ s: String, escapingHTML: Bool = true) -> String {
    var out = ""
    writeString(s, into: &out, escapingHTML: escapingHTML)
    return out
  }

  private func write(into out: inout String, indent: String?, level: Int, escapingHTML: Bool) {
    func newline(_ depth: Int) {
      guard let indent else { return }
      out += "\n" + String(repeating: indent, count: depth)
    }
    switch self {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .number(let n): out += n
    case .string(let s): Self.writeString(s, into: &out, escapingHTML: escapingHTML)
    case .array(let items):
      if items.isEmpty {
        out += "[]"
        return
      }
      out += "["
      for (i, item) in items.enumerated() {
        if i > 0 { out += "," }
        newline(level + 1)
        item.write(into: &out, indent: indent, level: level + 1, escapingHTML: escapingHTML)
      }
      newline(level)
      out += "]"
    case .object(let object):
      if object.isEmpty {
        out += "{}"
        return
      }
      out += "{"
      for (i, (key, value)) in object.enumerated() {
        if i > 0 { out += "," }
        newline(level + 1)
        Self.writeString(key, into: &out, escapingHTML: escapingHTML)
        out += indent == nil ? ":" : ": "
        value.write(into: &out, indent: indent, level: level + 1, escapingHTML: escapingHTML)
      }
      newline(level)
      out += "}"
    }
  }

  /// Appends the JSON string literal for `s` (see `quote`).
  package static func writeString(_ s: String, into out: inout String, escapingHTML: Bool) {
    out += "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case "<" where escapingHTML: out += "\\u003c"
      case ">" where escapingHTML: out += "\\u003e"
      case "&" where escapingHTML: out += "\\u0026"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    out += "\""
  }
}

private struct StrictJSONParser {
  let bytes: [UInt8]
  var index = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  /// An error at the current byte, with its line and column.
  func fail(_ message: String) -> JSONValue.ParseError {
    var line = 1
    var column = 1
    for byte in bytes[..<min(index, bytes.count)] {
      if byte == UInt8(ascii: "\n") {
        line += 1
        column = 1
      } else if byte & 0xC0 != 0x80 {
        column += 1
      }
    }
    return JSONValue.ParseError(.json, message, line: line, column: column)
  }

  mutating func skipWhitespace() {
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
  }

  mutating func expect(_ literal: String) throws(JSONValue.ParseError) {
    for byte in literal.utf8 {
      guard index < bytes.count, bytes[index] == byte else { throw fail("unexpected character") }
      index += 1
    }
  }

  mutating func value(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
    guard depth < JSONValue.maxDepth else { throw fail("nested deeper than \(JSONValue.maxDepth) levels") }
    guard index < bytes.count else { throw fail("unexpected end of input") }
    switch bytes[index] {
    case UInt8(ascii: "{"):
      index += 1
      var object = JSONValue.Object()
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(object)
      }
      while true {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
          throw fail("expected a string key")
        }
        let keyIndex = index
        let key = try string()
        guard object[key] == nil else {
          index = keyIndex
          throw fail("duplicate key \(JSONValue.quote(key, escapingHTML: false))")
        }
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        index += 1
        skipWhitespace()
        object[key] = try value(depth: depth + 1)
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of input") }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
          continue
        }
        guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
        index += 1
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
        guard index < bytes.count else { throw fail("unexpected end of input") }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
          continue
        }
        guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
        index += 1
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
    guard index < bytes.count else { throw fail("invalid number") }
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
    func flush(_ end: Int) throws(JSONValue.ParseError) {
      guard end > run else { return }
      guard let text = String(validating: bytes[run..<end], as: UTF8.self) else {
        index = run
        throw fail("invalid UTF-8 in a string")
      }
      scalars.append(contentsOf: text.unicodeScalars)
    }
    while index < bytes.count {
      switch bytes[index] {
      case UInt8(ascii: "\""):
        try flush(index)
        index += 1
        return String(scalars)
      case UInt8(ascii: "\\"):
        try flush(index)
        index += 1
        guard index < bytes.count else { throw fail("unterminated string") }
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
            index += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid surrogate pair") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          }
          // A lone surrogate is not a scalar: refused, not replaced.
          guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape (lone surrogate)") }
          scalars.append(scalar)
        default:
          throw fail("invalid escape")
        }
        run = index
      case 0x00..<0x20:
        throw fail("control character in string")
      default:
        index += 1
      }
    }
    throw fail("unterminated string")
  }

  mutating func hex4() throws(JSONValue.ParseError) -> UInt32 {
    guard index + 4 <= bytes.count else { throw fail("invalid \\u escape") }
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
