import PilotfishKit
import Testing

/// The strict JSON parser and the printer: what untrusted bodies (AdmissionReview, bootstrap files, pod
/// metadata, config dumps) may and may not be, and byte-exact round trips.
@Suite struct JSONValueJSONTests {
  @Test func keepsOrderAndNumberTextAndRefusesYAML() throws {
    let text = #" {"b": [1, -0.5e3, "x\u00e9\n"], "a": {"t": true, "n": null}} "#
    let value = try JSONValue.parseJSON(Array(text.utf8))
    #expect(value.objectValue.map { Array($0.keys) } == ["b", "a"])
    #expect(value["b"] == .array([.number("1"), .number("-0.5e3"), .string("x\u{e9}\n")]))
    #expect(value["a"] == .object(["t": .bool(true), "n": .null]))
  }

  static let invalid = [
    "a: 1", #"{"a": &x 1}"#, "[1,]", #"{"a":1,}"#, "01", "-", "1.", ".5", "+1", "1e", "0x1F", "NaN", "nan",
    "Infinity", #""unterminated"#, "[1] 2", "", " ", "[", "{", #"{"a"}"#, #"{"a" 1}"#, "{1: 2}", "'a'",
    "tru", "nul", #""\x""#, #""\u12""#, "\"tab\tinside\"", "[1 2]", "/* c */ 1", "// c\n1",
    // Duplicate keys: an error, so two readers of one document cannot disagree on its value.
    #"{"a": 1, "a": 2}"#, #"{"x": {"a": 1, "b": 2, "a": 1}}"#,
    // Lone surrogates are not characters.
    #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#,
  ]

  @Test(arguments: invalid)
  func refuses(text: String) {
    #expect(throws: JSONValue.ParseError.self, "\(text)") { try JSONValue.parseJSON(text) }
  }

  @Test func refusesInvalidUTF8InStrings() {
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseJSON([0x22, 0xC3, 0x28, 0x22]) }
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseJSON([0x22, 0xFF, 0x22]) }
  }

  @Test func depthIsLimited() throws {
    let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
    #expect(throws: JSONValue.ParseError.self) { try JSONValue.parseJSON(deep) }
    // maxDepth levels of nesting are fine, one more is not.
    let limit = JSONValue.maxDepth
    let atLimit = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
    _ = try JSONValue.parseJSON(atLimit)
    let aboveLimit = "[" + atLimit + "]"
    #expect(throws: JSONValue.ParseError.self) { _ = try JSONValue.parseJSON(aboveLimit) }
  }

  @Test func errorsSayWhere() {
    #expect(throws: JSONValue.ParseError(.json, "expected a string key", line: 1, column: 12)) {
      try JSONValue.parseJSON(#"{"admin": {,}}"#)
    }
    #expect(throws: JSONValue.ParseError(.json, #"duplicate key "a""#, line: 2, column: 3)) {
      try JSONValue.parseJSON("{\"a\": 1,\n  \"a\": 2}")
    }
    #expect(throws: JSONValue.ParseError(.json, "unexpected text after the JSON value", line: 1, column: 5)) {
      try JSONValue.parseJSON("[1] 2")
    }
    let error = JSONValue.ParseError(.json, "expected a string key", line: 1, column: 12)
    #expect(error.description == "not valid JSON at line 1, column 12: expected a string key")
  }

  @Test func escapesAndSurrogatePairs() throws {
    let value = try JSONValue.parseJSON(#""\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00""#)
    #expect(value == .string("\"\\/\u{08}\u{0C}\n\r\tA\u{e9}\u{1F600}"))
  }

  static let roundTrips = [
    #"{"z":1,"a":{"y":2,"b":[true,null,"false",0.5]}}"#,
    #"{"b":1,"a":[true,null,"x\"é\n"],"c":{"d":-1.5e3}}"#,
    #"[0,-0,1E+2,1e-7,123456789012345678901234567890,0.10]"#,
    #"{"":"","k":[],"o":{}}"#,
    #""\u0001\u001f""#,
  ]

  /// Compact text without spaces prints back byte for byte: key order, number spelling and escapes kept.
  @Test(arguments: roundTrips)
  func compactRoundTripIsByteExact(text: String) throws {
    let value = try JSONValue.parseJSON(text)
    #expect(value.jsonText == text)
    #expect(value.jsonText(pretty: false, escapingHTML: false) == text)
    #expect(try JSONValue.parseJSON(value.prettyJSONText) == value)
  }

  @Test func printsHTMLCharactersAsGoDoesUnlessAsked() throws {
    let value: JSONValue = ["a<b>": "x & y"]
    #expect(value.jsonText == #"{"a\u003cb\u003e":"x \u0026 y"}"#)
    #expect(value.jsonText(pretty: false, escapingHTML: false) == #"{"a<b>":"x & y"}"#)
    #expect(try JSONValue.parseJSON(value.jsonText) == value)
  }

  @Test func prettyIsTwoSpacesAsKubectl() {
    let value: JSONValue = ["a": [1, ["b": nil]], "e": [:], "l": []]
    #expect(
      value.prettyJSONText == """
        {
          "a": [
            1,
            {
              "b": null
            }
          ],
          "e": {},
          "l": []
        }
        """)
  }

  @Test func mergePatchFollowsRFC7386() {
    let base: JSONValue = ["a": 1, "b": ["c": 2, "d": 3], "e": [1]]
    let patch: JSONValue = ["b": ["c": nil, "f": 4], "e": "x", "g": true]
    #expect(base.merged(with: patch) == ["a": 1, "b": ["d": 3, "f": 4], "e": "x", "g": true])
    #expect(base.merged(with: "s") == "s")
  }
}
