import PilotfishKit
import Testing

/// YAML to JSON as Kubernetes and Envoy read it, the alias-expansion budget, and YAML printing that reads
/// back to the same value.
@Suite struct JSONValueYAMLTests {
  @Test func scalarsResolveLikeEnvoy() throws {
    let value = try JSONValue.parseYAML(
      "a: 1\nb: '1'\nc: true\nd: ~\ne: 0.25s\nf: 1.5\ng: 0x1F\nh: .inf\ni: 1e3\n")
    #expect(
      value == [
        "a": .number("1"), "b": .string("1"), "c": .bool(true), "d": .null, "e": .string("0.25s"),
        "f": .number("1.5"), "g": .number("31"), "h": .string("Infinity"), "i": .number("1e3"),
      ])
  }

  @Test func mergeKeysApplyExplicitKeysWin() throws {
    let value = try JSONValue.parseYAML(
      """
      base: &base {concurrency: 2, tracing: null}
      settings:
        <<: *base
        concurrency: 4
      before:
        concurrency: 8
        <<: *base
      """)
    #expect(value["settings"] == ["concurrency": 4, "tracing": nil])
    #expect(value["before"] == ["concurrency": 8, "tracing": nil])
  }

  @Test func duplicateAndNonScalarKeysAreErrors() {
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseYAML("a: 1\nb: 2\na: 3\n") }
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseYAML("? [a, b]\n: 1\n") }
  }

  /// Nested aliases ("billion laughs", e.g. in ISTIO_BOOTSTRAP_OVERRIDE or a pod annotation) are refused,
  /// not expanded: at most 16 nodes per input byte.
  @Test func aliasBombIsRefusedQuickly() {
    var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in 1..<9 {
      let previous = "*a\(level - 1)"
      text +=
        "a\(level): &a\(level) [" + Array(repeating: previous, count: 10).joined(separator: ", ") + "]\n"
    }
    let start = ContinuousClock.now
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseYAML(text) }
    #expect(ContinuousClock.now - start < .seconds(5))
    do {
      _ = try JSONValue.parseYAML(text)
    } catch {
      #expect(error.message.contains("YAML aliases"), "\(error)")
    }
  }

  @Test func syntaxErrorsNameTheirDocumentAndPlace() {
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseYAMLDocuments("kind: [unclosed") }
    do {
      _ = try JSONValue.parseYAMLDocuments("a: 1\n---\nb: [\n")
      Issue.record("expected an error")
    } catch {
      #expect(error.document == 2)
      #expect(error.line > 0)
    }
    do {
      _ = try JSONValue.parseYAML("admin:\n  address: [\n")
      Issue.record("expected an error")
    } catch {
      #expect(
        error.description
          == "not valid YAML at line 3, column 1: while parsing a flow node: did not find expected node content"
      )
    }
  }

  @Test func documentCount() throws {
    #expect(try JSONValue.parseYAMLDocuments("a: 1\n---\nb: 2\n") == [["a": 1], ["b": 2]])
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseYAML("a: 1\n---\nb: 2\n") }
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseYAML("# nothing\n") }
    #expect(try JSONValue.parseYAML("# nothing\n", orIfEmpty: .emptyObject) == .emptyObject)
  }

  static let ambiguousStrings = [
    "false", "true", "null", "15020", "1.5", "~", "yes", "0x1F", "", "a: b", "- x",
  ]

  @Test(arguments: ambiguousStrings)
  func yamlTextKeepsStringsStrings(text: String) throws {
    let value: JSONValue = ["k": .string(text)]
    #expect(try JSONValue.parseYAML(value.yamlText) == value, "printed as:\n\(value.yamlText)")
  }

  @Test func jsonRoundTripsThroughYAMLReader() throws {
    let text = #"{"z":1,"a":{"y":2,"b":[true,null,"false",0.5]}}"#
    #expect(try JSONValue.parseYAML(text).jsonText == text)
    #expect(try JSONValue.parseYAML(JSONValue.parseYAML(text).prettyJSONText).jsonText == text)
    #expect(try JSONValue.parseYAML(JSONValue.parseYAML(text).yamlText) == JSONValue.parseJSON(text))
  }
}
