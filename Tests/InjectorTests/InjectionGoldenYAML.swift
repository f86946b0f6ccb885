import PilotfishKit

@testable import Injector

/// Block-style YAML for golden files, written so that reading it back gives the same `JSONValue`:
/// a string is plain only when no YAML reader could take it for anything else, double-quoted otherwise.
enum InjectionGoldenYAML {
  static func text(_ value: JSONValue) -> String {
    var out = ""
    write(value, indent: 0, into: &out)
    return out
  }

  private static func write(_ value: JSONValue, indent: Int, into out: inout String) {
    let pad = String(repeating: " ", count: indent)
    switch value {
    case .object(let object) where !object.isEmpty:
      for (key, item) in object {
        out += pad + scalar(key) + ":"
        writeNested(item, indent: indent, into: &out)
      }
    case .array(let items) where !items.isEmpty:
      for item in items {
        switch item {
        case .object(let fields) where !fields.isEmpty:
          // The first key goes on the dash line.
          var nested = ""
          write(item, indent: indent + 2, into: &nested)
          out += pad + "- " + nested.dropFirst(indent + 2)
        case .array(let inner) where !inner.isEmpty:
          out += pad + "-\n"
          write(item, indent: indent + 2, into: &out)
        default:
          out += pad + "- " + inline(item) + "\n"
        }
      }
    default:
      out += pad + inline(value) + "\n"
    }
  }

  private static func writeNested(_ item: JSONValue, indent: Int, into out: inout String) {
    switch item {
    case .object(let object) where !object.isEmpty:
      out += "\n"
      write(item, indent: indent + 2, into: &out)
    case .array(let items) where !items.isEmpty:
      out += "\n"
      write(item, indent: indent, into: &out)
    default:
      out += " " + inline(item) + "\n"
    }
  }

  private static func inline(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let n): return n
    case .string(let s): return scalar(s)
    case .array: return "[]"
    case .object: return "{}"
    }
  }

  private static let words: Set<String> = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf", ".nan",
  ]

  /// `text` plain when it is unambiguous, else as a JSON (= YAML double-quoted) string.
  static func scalar(_ text: String) -> String {
    let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:$()=,@+- ")
    let plain =
      !text.isEmpty && text.allSatisfy { allowed.contains($0) }
      && (text.first?.isLetter == true || "/_$.".contains(text.first ?? " "))
      && !text.hasSuffix(" ") && !text.hasSuffix(":") && !text.contains(": ") && !text.contains(" #")
      && !words.contains(text.lowercased()) && Double(text) == nil && Int(text) == nil
    return plain ? text : JSONValue.quote(text)
  }
}
