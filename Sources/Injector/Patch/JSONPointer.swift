/// An RFC 6901 JSON Pointer: reference tokens, printed with `~` as `~0` and `/` as `~1`.
package struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
  /// Unescaped reference tokens; empty for the whole document.
  package var tokens: [String]

  package init(_ tokens: [String] = []) {
    self.tokens = tokens
  }

  /// Parses `""` or `/a/b~1c`; anything else (no leading slash, a `~` not followed by 0 or 1) is an error.
  package init(parsing text: String, operation: Int? = nil) throws(JSONPatchError) {
    if text.isEmpty {
      self.init()
      return
    }
    guard text.first == "/" else {
      throw JSONPatchError(operation: operation, message: "pointer \"\(text)\" does not start with \"/\"")
    }
    var tokens: [String] = []
    for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
      var token = ""
      var iterator = raw.makeIterator()
      while let c = iterator.next() {
        guard c == "~" else {
          token.append(c)
          continue
        }
        switch iterator.next() {
        case "0": token.append("~")
        case "1": token.append("/")
        default:
          throw JSONPatchError(
            operation: operation, message: "pointer \"\(text)\": \"~\" must be followed by 0 or 1")
        }
      }
      tokens.append(token)
    }
    self.init(tokens)
  }

  package func appending(_ token: String) -> JSONPointer {
    JSONPointer(tokens + [token])
  }

  package static func escape(_ token: String) -> String {
    var out = ""
    out.reserveCapacity(token.utf8.count)
    for c in token {
      switch c {
      case "~": out += "~0"
      case "/": out += "~1"
      default: out.append(c)
      }
    }
    return out
  }

  package var description: String {
    tokens.map { "/" + JSONPointer.escape($0) }.joined()
  }
}
