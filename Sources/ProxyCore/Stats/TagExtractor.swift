/// One tag extraction rule, as Envoy's `TagExtractorImplBase` subclasses apply it. Every extractor looks
/// at the stat's FULL name (not at what earlier extractors left); the character ranges they remove are
/// unioned and cut out at the end (`TagProducer`).
struct TagExtractor: Sendable {
  enum Rule: Sendable {
    /// A configured `regex`, searched (Envoy compiles these as `std::regex`; here it is RE2 like every
    /// regex, so lookarounds and backreferences are rejected at load): the first capture group is removed,
    /// the value is the second group when the regex has two or more groups (even if that group took no part
    /// in the match), else the first.
    case searchRegex(CompiledRegex)
    /// A built-in RE2 extractor (`RE2::PartialMatch` with two outputs): the first group must be non-empty;
    /// an empty or missing second group falls back to the first. A value equal to `negativeMatch` is no match.
    case defaultRegex(CompiledRegex, negativeMatch: String)
    /// A built-in tokenized pattern such as `cluster.$.**`: `*` one token, `**` any tokens (at the end: at
    /// least one), `$` the value token, removed together with the dot that follows it (the dot before it
    /// when it is the last token).
    case tokens([Substring], valueIndex: Int)
    /// `fixed_value`: always adds the tag, removes nothing.
    case fixed(String)
  }

  let name: String
  /// First dot-separated token a name must start with for this extractor to run; empty means every name.
  let prefix: String
  /// Cheap pre-check: a name not containing this is skipped (Envoy's `substr`); empty means none.
  let substr: String
  let rule: Rule

  /// What one extractor found: the tag value and the UTF-8 offsets to remove from the name.
  struct Extraction: Equatable {
    var value: String
    var remove: Range<Int>
  }

  func extract(from name: String, tokens: [Substring]) -> Extraction? {
    if !substr.isEmpty, !ASCIIFold.contains(Array(name.utf8), Array(substr.utf8), ignoreCase: false) {
      return nil
    }
    switch rule {
    case .fixed(let value):
      return Extraction(value: value, remove: 0..<0)
    case .searchRegex(let regex):
      guard regex.captureCount >= 1, let match = regex.firstMatch(in: name) else { return nil }
      let removeRange = match.groups[1]
      let valueRange = match.groups.count > 2 ? match.groups[2] : match.groups[1]
      let value = valueRange.map { Self.text(name, $0) } ?? ""
      return Extraction(value: value, remove: removeRange ?? 0..<0)
    case .defaultRegex(let regex, let negativeMatch):
      guard regex.captureCount >= 1, let match = regex.firstMatch(in: name),
        let removeRange = match.groups[1], !removeRange.isEmpty
      else { return nil }
      var value = Self.text(name, removeRange)
      if match.groups.count > 2, let v = match.groups[2], !v.isEmpty { value = Self.text(name, v) }
      if !negativeMatch.isEmpty, value == negativeMatch { return nil }
      return Extraction(value: value, remove: removeRange)
    case .tokens(let pattern, let valueIndex):
      var found: (start: Int, token: Int)? = nil
      guard Self.search(pattern, valueIndex, tokens, 0, 0, 0, &found), let (start, token) = found else {
        return nil
      }
      let value = tokens[token]
      var lower = start
      var upper = start + value.utf8.count
      if token < tokens.count - 1 {
        upper += 1
      } else if lower > 0 {
        lower -= 1
      }
      return Extraction(value: String(value), remove: lower..<upper)
    }
  }

  /// The text at UTF-8 offsets `range` of `name` (RE2 reports byte offsets on code point boundaries).
  private static func text(_ name: String, _ range: Range<Int>) -> String {
    let utf8 = name.utf8
    let lower = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
    let upper = utf8.index(lower, offsetBy: range.count)
    return String(decoding: utf8[lower..<upper], as: UTF8.self)
  }

  /// Matches `pattern[p...]` against `input[i...]`; `offset` is the UTF-8 offset of `input[i]`.
  private static func search(
    _ pattern: [Substring], _ valueIndex: Int, _ input: [Substring], _ i: Int, _ p: Int, _ offset: Int,
    _ found: inout (start: Int, token: Int)?
  ) -> Bool {
    var i = i
    var p = p
    var offset = offset
    while i < input.count && p < pattern.count {
      if p == valueIndex {
        found = (offset, i)
      } else if pattern[p] == "**" {
        if p == pattern.count - 1 { return true }
        for j in i..<input.count {
          if search(pattern, valueIndex, input, j, p + 1, offset, &found) { return true }
          offset += input[j].utf8.count + 1
        }
        return false
      } else if pattern[p] != "*" && pattern[p] != input[i] {
        return false
      }
      offset += input[i].utf8.count + 1
      i += 1
      p += 1
    }
    return p == pattern.count && i == input.count
  }

  // MARK: Construction

  static func configured(name: String, regex: String, path: String) throws(StatsConfigError) -> TagExtractor {
    let compiled = try CompiledRegex(regex, what: "\(path): tag '\(name)' regex")
    return TagExtractor(name: name, prefix: regexPrefix(regex), substr: "", rule: .searchRegex(compiled))
  }

  static func tokenized(name: String, pattern: String) -> TagExtractor {
    let tokens = pattern.split(separator: ".", omittingEmptySubsequences: false)
    let first = tokens.first.map(String.init) ?? ""
    return TagExtractor(
      name: name, prefix: ["$", "*", "**"].contains(first) ? "" : first, substr: "",
      rule: .tokens(tokens, valueIndex: tokens.firstIndex(of: "$") ?? 0))
  }

  /// The literal first token a regex anchors on (`^cluster\.` → `cluster`), as Envoy's
  /// `extractRegexPrefix`: `^` then letters, digits or `_`, then `\.`, `(?=\.)` or a final `$`.
  static func regexPrefix(_ regex: String) -> String {
    let chars = Array(regex.utf8)
    guard chars.first == UInt8(ascii: "^") else { return "" }
    var i = 1
    while i < chars.count {
      let c = chars[i]
      let isWord =
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == UInt8(ascii: "_")
      if !isWord {
        guard i > 1 else { return "" }
        let rest = chars[i...]
        let last = i == chars.count - 1
        if (!last && (rest.starts(with: Array(#"\."#.utf8)) || rest.starts(with: Array(#"(?=\.)"#.utf8))))
          || (last && c == UInt8(ascii: "$"))
        {
          return String(decoding: chars[1..<i], as: UTF8.self)
        }
        return ""
      }
      i += 1
    }
    return ""
  }
}
