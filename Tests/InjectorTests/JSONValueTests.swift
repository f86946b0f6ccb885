import Foundation
import PilotfishKit
import Testing

@testable import Injector

/// What `pilotfish inject` relies on from `JSONValue` and YAML: manifests that round-trip strings as strings
/// (label values such as "false" or "15020"), and parse errors that are not swallowed. The parser and
/// printer themselves are tested in PilotfishKitTests.
@Suite("JSONValue as manifests use it")
struct JSONValueTests {
  static let ambiguousStrings = ["false", "true", "null", "15020", "1.5", "~", "yes", "0x1F", ""]
  static let plainStrings = ["2024-01-01", "a: b", "- x", "#c", "nginx:1.25", "multi\nline", " padded "]

  @Test(arguments: ambiguousStrings + plainStrings)
  func manifestYAMLKeepsStringsStrings(text: String) throws {
    let value: JSONValue = ["metadata": ["labels": ["k": .string(text)]], text: "key"]
    let printed = Manifest(documents: [value], format: .yaml).text
    #expect(try Manifest(parsing: printed).documents == [value], "printed as:\n\(printed)")
  }

  @Test func manifestYAMLKeepsNumbersBoolsAndNull() throws {
    let value: JSONValue = [
      "port": 15020, "ratio": .number("0.5"), "on": true, "nothing": nil, "list": [1, "1"],
    ]
    let printed = Manifest(documents: [value], format: .yaml).text
    #expect(try Manifest(parsing: printed).documents == [value], "printed as:\n\(printed)")
  }

  @Test func manifestParseErrorsAreNotSwallowed() {
    #expect(throws: ManifestError.self) { try Manifest(parsing: "kind: [unclosed") }
    #expect(throws: ManifestError.self) { try Manifest(parsing: "a: 1\n---\nb: [\n") }
    #expect(throws: ManifestError.self) { try Manifest(parsing: #"{"a": 1"#) }
  }
}
