import Foundation
import PilotfishKit
import Testing

@testable import Agent

/// PROXY_CONFIG and the proxy.istio.io/config annotation accept YAML: nested aliases ("billion laughs")
/// must be refused quickly instead of expanding into billions of values.
@Suite struct YAMLAliasTests {
  static let bomb = """
    a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
    """

  @Test func aliasBombIsRefusedQuickly() {
    let start = ContinuousClock.now
    #expect(throws: (any Error).self) { try JSONValue.parse(jsonOrYAML: Self.bomb) }
    #expect(ContinuousClock.now - start < .seconds(5))
  }

  @Test func plainYAMLResolvesAsBefore() throws {
    let value = try JSONValue.parse(
      jsonOrYAML: """
        base: &base {concurrency: 2, tracing: null}
        drainDuration: 45s
        holdApplicationUntilProxyStarts: true
        ratio: 1.5
        count: 10
        quoted: "10"
        settings:
          <<: *base
          concurrency: 4
        list: [a, 1]
        """)
    #expect(value["drainDuration"] == .string("45s"))
    #expect(value["holdApplicationUntilProxyStarts"] == .bool(true))
    #expect(value["ratio"] == .number("1.5"))
    #expect(value["count"] == .number("10"))
    #expect(value["quoted"] == .string("10"))
    #expect(value["settings"] == .object(["concurrency": .number("4"), "tracing": .null]))
    #expect(value["list"] == .array([.string("a"), .number("1")]))
  }
}
