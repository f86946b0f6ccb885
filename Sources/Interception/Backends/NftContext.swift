internal import CNetfilter
internal import Foundation

/// One libnftables context: runs a command buffer (a transaction) and returns its output.
///
/// Each call uses a fresh context, so output and error buffers never mix between commands.
enum NftContext {
  struct Failure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
  }

  /// Runs `commands` as one transaction. With `check`, the kernel validates it and commits nothing.
  static func run(_ commands: String, json: Bool = false, check: Bool = false) throws(Failure) -> String {
    var outputText: UnsafeMutablePointer<CChar>?
    var errorText: UnsafeMutablePointer<CChar>?
    let rc = pf_nft_run(commands, json ? 1 : 0, check ? 1 : 0, &outputText, &errorText)
    defer {
      pf_nft_free(outputText)
      pf_nft_free(errorText)
    }
    let output = outputText.map { String(cString: $0) } ?? ""
    if rc != 0 {
      let error = errorText.map { String(cString: $0) } ?? ""
      throw Failure(message: error.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return output
  }

  /// `family name` of every table in the namespace, e.g. `inet pilotfish-nat`, `ip nat`.
  static func tables() throws(Failure) -> [String] {
    try run("list tables").split(separator: "\n").compactMap { line in
      let words = line.split(separator: " ")
      guard words.count >= 3, words[0] == "table" else { return nil }
      return "\(words[1]) \(words[2])"
    }
  }

  /// The chains of one table with their rule lines (the `type ... hook` line of base chains left out),
  /// parsed from the text listing.
  static func chains(of table: String) throws(Failure) -> [(chain: String, rules: [String])] {
    var result: [(chain: String, rules: [String])] = []
    for raw in try run("list table \(table)").split(separator: "\n") {
      let line = raw.trimmingCharacters(in: .whitespaces)
      if line.hasPrefix("chain "), line.hasSuffix("{") {
        let name = line.dropFirst("chain ".count).dropLast().trimmingCharacters(in: .whitespaces)
        result.append((name, []))
      } else if line == "}" || line.isEmpty || line.hasPrefix("table ") || line.hasPrefix("type ")
        || line.hasPrefix("policy ")
      {
        continue
      } else if !result.isEmpty {
        result[result.count - 1].rules.append(line)
      }
    }
    return result
  }
}
