private import CRE2

/// A regular expression compiled once from configuration text with Google's RE2 (through `CRE2`), as Envoy
/// compiles `safe_regex` and its built-in tag extractors: matching takes time linear in the input, so no
/// pattern and no hostile path or header can make a match backtrack exponentially. RE2 matches UTF-8 code
/// points; it has no backreferences and no lookaround, and patterns using them are rejected when compiled.
///
/// Copies share one compiled program, which is immutable and may be matched from any thread at once; it
/// is released when the last copy goes.
struct CompiledRegex: Sendable {
  /// RE2's program size (its instruction count) above which a pattern is rejected, as Envoy rejects one
  /// above its `re2.max_program_size.error_level` runtime value; 32768 is what Istio's bootstrap sets it to.
  static let maxProgramSize = 32768
  /// Memory budget of one compiled program and its DFA caches: RE2's default, stated so it is a choice.
  static let maxMemory: Int64 = 8 << 20

  /// Owns the `pf_re2`. RE2 objects are thread-safe for matching once built and never change afterwards,
  /// so sharing the pointer across threads is sound.
  private final class Program: @unchecked Sendable {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { pf_re2_free(handle) }
  }

  private let program: Program
  let pattern: String
  /// Number of capturing groups, not counting the whole match.
  let captureCount: Int

  /// The leftmost match: UTF-8 byte ranges of the whole match (`groups[0]`) and of each capturing group
  /// (`groups[1...]`, `nil` for one that took no part in the match).
  struct Match: Equatable {
    var groups: [Range<Int>?]
  }

  /// - Parameter what: names the regex in the error, e.g. `tag 'cluster_name' regex`.
  init(_ pattern: String, what: String) throws(StatsConfigError) {
    var text = pattern
    let handle = text.withUTF8 { pf_re2_compile($0.baseAddress, $0.count, Self.maxMemory) }
    guard let handle else {
      throw StatsConfigError(.invalidRegex, "\(what) '\(pattern)': out of memory compiling it")
    }
    let program = Program(handle)
    guard pf_re2_ok(handle) != 0 else {
      let reason = String(cString: pf_re2_error(handle))
      throw StatsConfigError(
        .invalidRegex, "\(what) '\(pattern)' is not a valid RE2 regex: \(reason)")
    }
    let size = Int(pf_re2_program_size(handle))
    guard size <= Self.maxProgramSize else {
      throw StatsConfigError(
        .invalidRegex,
        "\(what) '\(pattern)' is too complex: RE2 program size \(size) exceeds the limit of "
          + "\(Self.maxProgramSize)")
    }
    self.program = program
    self.pattern = pattern
    self.captureCount = Int(pf_re2_capture_count(handle))
  }

  /// RE2 `FullMatch`.
  func wholeMatches(_ value: String) -> Bool {
    var value = value
    return value.withUTF8 { pf_re2_full_match(program.handle, $0.baseAddress, $0.count) != 0 }
  }

  /// RE2 `PartialMatch`.
  func searches(_ value: String) -> Bool {
    var value = value
    return value.withUTF8 { pf_re2_partial_match(program.handle, $0.baseAddress, $0.count) != 0 }
  }

  /// The leftmost match and its groups' byte ranges (RE2 `PartialMatch` with every group captured).
  func firstMatch(in value: String) -> Match? {
    let groups = min(captureCount + 1, 64)
    var value = value
    return value.withUTF8 { text in
      withUnsafeTemporaryAllocation(of: Int64.self, capacity: 2 * groups) { ranges -> Match? in
        guard let base = ranges.baseAddress,
          pf_re2_search(program.handle, text.baseAddress, text.count, Int32(groups), base, base + groups) != 0
        else { return nil }
        var found: [Range<Int>?] = []
        found.reserveCapacity(groups)
        for i in 0..<groups {
          let start = ranges[i]
          let end = ranges[groups + i]
          found.append(start >= 0 && end >= start ? Int(start)..<Int(end) : nil)
        }
        return Match(groups: found)
      }
    }
  }
}
