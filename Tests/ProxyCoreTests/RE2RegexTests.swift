import EnvoyAPI
import Testing

@testable import ProxyCore

/// `safe_regex`, stats tag and filter regexes run on RE2: linear time whatever the input, RE2 syntax only
/// (no lookaround, no backreferences), errors that name the field.
@Suite struct RE2RegexTests {
  /// Patterns that take exponential time in a backtracking engine, each with a hostile input that does not
  /// match and one that does. RE2 answers in microseconds; the bound only separates linear from exponential
  /// (a backtracking engine needs about 2^40 steps for the first).
  static let hostile: [(pattern: String, hostile: String, matching: String)] = [
    (#"(a+)+$"#, String(repeating: "a", count: 40) + "!", "aaa"),
    (#"(x+x+)+y"#, String(repeating: "x", count: 40), "xxy"),
    (#"(a|a)*b"#, String(repeating: "a", count: 40), "aab"),
    (#"(a*)*b"#, String(repeating: "a", count: 40), "ab"),
    (#"^(a|aa)+$"#, String(repeating: "a", count: 60) + "b", "aaa"),
    (#"(\w+\s?)+$"#, String(repeating: "word ", count: 12) + "!", "two words"),
    (
      #"/(.*a){20}"#, "/" + String(repeating: "a", count: 19) + String(repeating: "b", count: 30),
      "/" + String(repeating: "a", count: 20)
    ),
  ]

  @Test(arguments: hostile.indices)
  func catastrophicPatternsAnswerInLinearTime(index: Int) throws {
    let (pattern, hostile, matching) = Self.hostile[index]
    let matcher = try StringMatcher(.safeRegex(pattern))
    let regex = try CompiledRegex(pattern, what: "test")
    let clock = ContinuousClock()
    var results: [Bool] = []
    let elapsed = clock.measure {
      results.append(matcher.matches(hostile))
      results.append(regex.searches(hostile))
      results.append(regex.firstMatch(in: hostile) != nil)
    }
    #expect(results == [false, false, false], "\(pattern)")
    #expect(elapsed < .seconds(1), "\(pattern) against \(hostile.utf8.count) bytes took \(elapsed)")
    #expect(matcher.matches(matching), "\(pattern) full-matches \(matching)")
  }

  @Test(arguments: [
    (#"foo(?=bar)"#, "(?="),
    (#"foo(?!bar)"#, "(?!"),
    (#"(?<=a)b"#, "(?<"),
    (#"(?<!a)b"#, "(?<"),
    (#"(a)\1"#, #"\1"#),
    (#"(?P<x>a)(?P=x)"#, "(?P"),
    (#"a++"#, "++"),
    (#"\Z"#, #"\Z"#),
  ])
  func unsupportedSyntaxIsRejectedWithRE2sReason(pattern: String, fragment: String) {
    do {
      _ = try StringMatcher(.safeRegex(pattern))
      Issue.record("\(pattern) compiled")
    } catch {
      #expect(error.code == .invalidRegex)
      #expect(error.message.contains("string matcher safe_regex '\(pattern)' is not a valid RE2 regex"))
      #expect(error.message.contains(fragment), "\(error.message)")
    }
  }

  @Test func tooLargeProgramsAreRejected() {
    // Over the memory budget: RE2 itself refuses it.
    do {
      _ = try CompiledRegex(#"\pL{1000}"#, what: "huge")
      Issue.record("a pattern over the memory budget compiled")
    } catch {
      #expect(error.message.contains("pattern too large"), "\(error.message)")
    }
    // Within RE2's budget but over the program-size limit.
    let large = String(repeating: "[a-z]{1000}", count: 40)
    do {
      _ = try CompiledRegex(large, what: "big")
      Issue.record("a \(large.utf8.count)-byte pattern compiled")
    } catch {
      #expect(error.code == .invalidRegex)
      #expect(
        error.message.contains("exceeds the limit of \(CompiledRegex.maxProgramSize)"), "\(error.message)")
    }
    // Just under it compiles.
    #expect((try? CompiledRegex(String(repeating: "[a-z]{1000}", count: 10), what: "ok")) != nil)
  }

  @Test func semanticsOfMatching() throws {
    let regex = try CompiledRegex(#"^/api/(v\d+)/(users|groups)(/\d+)?$"#, what: "t")
    #expect(regex.captureCount == 3)
    #expect(regex.wholeMatches("/api/v1/users"))
    #expect(!regex.wholeMatches("/api/v1/users/x"))
    #expect(regex.firstMatch(in: "/api/v12/groups")?.groups == [0..<15, 5..<8, 9..<15, nil])
    // Full vs partial match.
    let inner = try CompiledRegex("b+", what: "t")
    #expect(!inner.wholeMatches("abbbc"))
    #expect(inner.searches("abbbc"))
    #expect(inner.firstMatch(in: "abbbc")?.groups == [1..<4])
    // Empty input and an empty group at offset 0 (not "did not take part").
    let empty = try CompiledRegex("^(x*)", what: "t")
    #expect(empty.firstMatch(in: "")?.groups == [0..<0, 0..<0])
    #expect(try CompiledRegex("", what: "t").wholeMatches(""))
    // Byte offsets on code point boundaries; `.` is one code point, not one byte.
    let utf8 = try CompiledRegex(#"caf(.)\.(.+)"#, what: "t")
    #expect(utf8.firstMatch(in: "x.café.ü")?.groups == [2..<10, 5..<7, 8..<10])
    #expect(try CompiledRegex("^.$", what: "t").wholeMatches("é"))
    // NUL bytes in pattern and input are data, not terminators.
    #expect(try CompiledRegex("a\u{0}b", what: "t").wholeMatches("a\u{0}b"))
    #expect(!(try CompiledRegex("a", what: "t").wholeMatches("a\u{0}b")))
  }

  @Test func sharedAcrossThreads() async throws {
    let regex = try CompiledRegex(#"^cluster\.([^.]+)\.upstream_rq_(\d{3})$"#, what: "t")
    let names = (0..<200).map { "cluster.c\($0).upstream_rq_\(200 + $0 % 300)" }
    let counts = await withTaskGroup(of: Int.self) { group in
      for _ in 0..<8 {
        group.addTask { names.reduce(0) { $0 + (regex.firstMatch(in: $1)?.groups.count == 3 ? 1 : 0) } }
      }
      return await group.reduce(into: [Int]()) { $0.append($1) }
    }
    #expect(counts == Array(repeating: 200, count: 8))
  }

  @Test func everyDefaultTagRegexCompilesUnderRE2() throws {
    for descriptor in DefaultTagExtractors.descriptors {
      _ = try DefaultTagExtractors.extractor(descriptor)
    }
  }

  /// A configured tag regex extracts by byte ranges: a non-ASCII value is cut out whole.
  @Test func configuredTagRegexWithNonASCIIValue() throws {
    var config = StatsConfig()
    config.useAllDefaultTags = false
    config.tagSpecifiers = [.init(name: "cluster_name", value: .regex(#"^cluster\.((.+?)\.)"#))]
    let identity = try TagProducer(config: config).identity(of: "cluster.café-ü.upstream_rq_total")
    #expect(identity.tagExtractedName == "cluster.upstream_rq_total")
    #expect(identity.tags == [StatTag(name: "cluster_name", value: "café-ü")])
  }

  @Test func lookaroundInStatsConfigIsRejectedWithItsFieldPath() {
    var proto = Envoy_Config_Metrics_V3_StatsConfig()
    var inclusion = Envoy_Type_Matcher_V3_ListStringMatcher()
    var good = Envoy_Type_Matcher_V3_StringMatcher()
    good.prefix = "cluster."
    var bad = Envoy_Type_Matcher_V3_StringMatcher()
    bad.safeRegex.regex = #"cluster\.(?!xds).*"#
    inclusion.patterns = [good, bad]
    proto.statsMatcher.inclusionList = inclusion
    do {
      _ = try StatsConfig(proto, path: "stats_config")
      Issue.record("a lookahead compiled")
    } catch {
      #expect(error.path == "stats_config.stats_matcher.inclusion_list.patterns[1]")
      #expect(error.message.contains("not a valid RE2 regex"), "\(error.message)")
    }

    var tags = Envoy_Config_Metrics_V3_StatsConfig()
    var tag = Envoy_Config_Metrics_V3_TagSpecifier()
    tag.tagName = "t"
    tag.regex = #"^cluster\.((.+)\.)\1"#
    tags.statsTags = [tag]
    do {
      _ = try StatsConfig(tags, path: "stats_config")
      Issue.record("a backreference compiled")
    } catch {
      #expect(error.path == "stats_config")
      #expect(error.message.contains("stats_tags[0]"), "\(error.message)")
      #expect(error.message.contains("not a valid RE2 regex"), "\(error.message)")
    }
  }
}
