internal import Foundation

/// The Kubernetes downward-API volume format for labels and annotations: one `key="value"` per line,
/// values quoted as Go's `%q` does (`\"`, `\\`, `\n`, `\t`, `\xNN`, `\uNNNN`, `\UNNNNNNNN`, octal).
package enum DownwardAPIFile {
  /// Parses the file at `path`; a missing file is an empty map (Istio tolerates it).
  package static func read(path: String) throws(AgentError) -> [String: String] {
    guard FileManager.default.fileExists(atPath: path) else { return [:] }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw AgentError(.invalidFile, "\(path): cannot read", cause: error)
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw AgentError(.invalidFile, "\(path): not UTF-8")
    }
    return try parse(text, source: path)
  }

  package static func parse(_ text: String, source: String) throws(AgentError) -> [String: String] {
    var out: [String: String] = [:]
    for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      guard let eq = line.firstIndex(of: "=") else {
        throw AgentError(.invalidFile, "\(source):\(index + 1): expected key=\"value\"")
      }
      let key = String(line[..<eq])
      let quoted = String(line[line.index(after: eq)...])
      guard !key.isEmpty else {
        throw AgentError(.invalidFile, "\(source):\(index + 1): empty key")
      }
      guard let value = unquote(quoted) else {
        throw AgentError(.invalidFile, "\(source):\(index + 1): invalid quoted value for \(key)")
      }
      out[key] = value
    }
    return out
  }

  /// Go's `strconv.Unquote` for double-quoted strings; nil when malformed.
  package static func unquote(_ s: String) -> String? {
    let scalars = Array(s.unicodeScalars)
    guard scalars.count >= 2, scalars.first == "\"", scalars.last == "\"" else { return nil }
    var bytes: [UInt8] = []
    var i = 1
    let end = scalars.count - 1
    func hex(_ count: Int) -> UInt32? {
      guard i + count <= end else { return nil }
      let digits = String(String.UnicodeScalarView(scalars[i..<(i + count)]))
      guard let v = UInt32(digits, radix: 16) else { return nil }
      i += count
      return v
    }
    func append(_ scalar: Unicode.Scalar) { bytes.append(contentsOf: Array(String(scalar).utf8)) }
    while i < end {
      let c = scalars[i]
      i += 1
      if c == "\"" { return nil }
      guard c == "\\" else {
        append(c)
        continue
      }
      guard i < end else { return nil }
      let e = scalars[i]
      i += 1
      switch e {
      case "a": bytes.append(7)
      case "b": bytes.append(8)
      case "f": bytes.append(12)
      case "n": bytes.append(10)
      case "r": bytes.append(13)
      case "t": bytes.append(9)
      case "v": bytes.append(11)
      case "\\": bytes.append(92)
      case "\"": bytes.append(34)
      case "'": bytes.append(39)
      case "x":
        guard let v = hex(2) else { return nil }
        bytes.append(UInt8(v))
      case "u", "U":
        guard let v = hex(e == "u" ? 4 : 8), let scalar = Unicode.Scalar(v) else { return nil }
        append(scalar)
      case "0"..."7":
        guard i + 2 <= end else { return nil }
        let digits = String(String.UnicodeScalarView(scalars[(i - 1)..<(i + 2)]))
        guard let v = UInt32(digits, radix: 8), v <= 255 else { return nil }
        i += 2
        bytes.append(UInt8(v))
      default: return nil
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
