import Testing

@testable import Injector

/// The grammars behind annotation validation: CIDRs as Go's netip parses them, Kubernetes quantities.
@Suite("Annotation value grammars")
struct AnnotationRulesTests {
  @Test(
    "valid CIDRs",
    arguments: [
      "0.0.0.0/0", "10.0.0.0/8", "192.168.1.7/32", "10.0.0.1/24", "::/0", "::1/128", "fd00::/8",
      "2001:db8::/32", "2001:db8:0:0:0:0:0:1/128", "1:2:3:4:5:6:7::/112", "::ffff:10.0.0.0/104",
      "64:ff9b::192.0.2.33/128", "FD00::/8",
    ])
  func validCIDR(_ text: String) {
    #expect(IPPrefixText.isPrefix(Substring(text)))
  }

  @Test(
    "invalid CIDRs",
    arguments: [
      "", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "256.0.0.0/8", "10.0.0/8", "10.0.0.0.0/8",
      "01.0.0.0/8", "::/129", "fd00:::1/64", "1:2:3:4:5:6:7:8:9/64", "1:2:3:4:5:6:7:8::/64", "12345::/16",
      "fe80::1%eth0/64", "1.2.3.4::/64", "::1.2.3/96", "g::/8", "*", " 10.0.0.0/8", "10.0.0.0/8 ",
    ])
  func invalidCIDR(_ text: String) {
    #expect(!IPPrefixText.isPrefix(Substring(text)))
  }

  @Test(
    "valid quantities",
    arguments: ["100m", "2", "0.5", ".5", "1.", "128Mi", "1Gi", "1e3", "1E-2", "+1k", "5n", "3Ei"])
  func validQuantity(_ text: String) {
    #expect(ResourceQuantityText.isValid(text))
  }

  @Test(
    "invalid quantities",
    arguments: ["", "m", "1GB", "1 Gi", "-1", "1.2.3", "0x10", "1e", "1ki", "Mi", ".", "1\n"])
  func invalidQuantity(_ text: String) {
    #expect(!ResourceQuantityText.isValid(text))
  }

  @Test("Go's ParseBool")
  func bools() {
    for text in ["1", "t", "T", "TRUE", "true", "True"] { #expect(AnnotationRules.bool(text) == true) }
    for text in ["0", "f", "F", "FALSE", "false", "False"] { #expect(AnnotationRules.bool(text) == false) }
    for text in ["", "yes", "tRuE", " true"] { #expect(AnnotationRules.bool(text) == nil) }
  }

  @Test("the status port joins the excluded inbound ports unless listed or 0")
  func excludedInboundPorts() {
    #expect(SidecarOptions.adding(statusPort: 15020, to: "") == "15020")
    #expect(SidecarOptions.adding(statusPort: 15020, to: "8080, 9090") == "8080,9090,15020")
    #expect(SidecarOptions.adding(statusPort: 15020, to: "15020,8080") == "15020,8080")
    #expect(SidecarOptions.adding(statusPort: 0, to: "8080") == "8080")
  }

  @Test("Istio agent log levels map to pilotfish --log-level")
  func logLevels() throws {
    #expect(try SidecarOptions.pilotfishLogLevel("default:info") == "info")
    #expect(try SidecarOptions.pilotfishLogLevel("debug") == "debug")
    #expect(try SidecarOptions.pilotfishLogLevel("ads:debug,default:warn") == "warning")
    #expect(try SidecarOptions.pilotfishLogLevel("ads:debug") == "info")
    #expect(try SidecarOptions.pilotfishLogLevel("default:none") == "error")
  }
}
