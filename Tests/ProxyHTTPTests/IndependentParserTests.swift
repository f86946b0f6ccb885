import Foundation
import TestSupport
import Testing

@testable import ProxyHTTP

/// Our HTTP/1 codec's strictness judged by two parsers written by others: llhttp (Node's parser, through
/// PyPI's `llhttp` binding, strict mode: no lenient flag set) and h11 (Python). Every smuggling vector, every
/// rejected chunked body, a set of probes and a set of valid requests go through all three. Where an
/// independent parser rejects, ours must reject too; where ours is stricter, the case is listed below with
/// the reason, and the lists must stay exact, so a change on either side shows up here.
@Suite struct IndependentParserTests {
  /// How a parser took one input: a complete message and no error, an error, or no error but no
  /// complete message yet (a body still owed).
  enum Verdict: String, Sendable {
    case accept, reject, incomplete
  }

  struct Case: Sendable {
    var name: String
    var raw: [UInt8]
    /// A well-formed request: every parser must accept it (this keeps the comparison honest: a
    /// harness that rejected everything would otherwise pass).
    var valid = false
  }

  static let chunkedHead = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

  static let validRequests: [(String, String)] = [
    ("GET", "GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("GET with query", "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("POST Content-Length", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"),
    ("Content-Length 0", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
    ("Content-Length leading zeros", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\n\r\nhello"),
    ("Content-Length with OWS", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:  5 \r\n\r\nhello"),
    ("chunked", chunkedHead + "5\r\nhello\r\n0\r\n\r\n"),
    ("chunked upper-case hex", chunkedHead + "A\r\n0123456789\r\n0\r\n\r\n"),
    ("chunked leading zeros", chunkedHead + "005\r\nhello\r\n000\r\n\r\n"),
    ("chunk extension", chunkedHead + "5;name=value\r\nhello\r\n0\r\n\r\n"),
    ("chunk extension without value", chunkedHead + "5;a\r\nhello\r\n0\r\n\r\n"),
    ("quoted chunk extension", chunkedHead + "5;name=\"v \\\" a\"\r\nhello\r\n0\r\n\r\n"),
    ("chunked trailers", chunkedHead + "5\r\nhello\r\n0\r\nExpires: never\r\nX-Checksum:  abc \r\n\r\n"),
    ("TE Chunked (case)", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
    ("TE with OWS", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n"),
    ("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("absolute-form", "GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("CONNECT authority-form", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
    ("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"),
    ("tab in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n"),
    ("OWS around value", "GET / HTTP/1.1\r\nHost: h\r\nX: \t a \t\r\n\r\n"),
    ("empty value", "GET / HTTP/1.1\r\nHost: h\r\nX:\r\n\r\n"),
    ("obs-text in value", "GET / HTTP/1.1\r\nHost: h\r\nX: caf\u{e9}\r\n\r\n"),
    ("every tchar in a name", "GET / HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+.^_`|~1: v\r\n\r\n"),
    ("PURGE", "PURGE / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("pipelined", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("Upgrade", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"),
    ("Expect", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"),
    ("target sub-delims", "GET /a;b,c=d!$&'()*+@:~ HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("Content-Length on GET", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab"),
    ("chunked GET", "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
  ]

  /// Inputs with no expectation of our own: only the rule (and the lists below) judge them.
  static let probes: [(String, String)] = [
    ("chunk size then space before ;", chunkedHead + "5 ;a=b\r\nhello\r\n0\r\n\r\n"),
    ("space after ;", chunkedHead + "5; a=b\r\nhello\r\n0\r\n\r\n"),
    ("space around = in extension", chunkedHead + "5;a = b\r\nhello\r\n0\r\n\r\n"),
    ("chunk size tab", chunkedHead + "5\t\r\nhello\r\n0\r\n\r\n"),
    ("chunk size overflow 2^64", chunkedHead + "10000000000000000\r\n"),
    ("last chunk with bare LFs", chunkedHead + "5\r\nhello\r\n0\n\n"),
    ("chunk extension CR", chunkedHead + "5;a\rhello\r\n0\r\n\r\n"),
    ("chunk extension control char", chunkedHead + "5;a\u{1}\r\nhello\r\n0\r\n\r\n"),
    ("trailer bare LF", chunkedHead + "5\r\nhello\r\n0\r\nX: 1\n\r\n"),
    ("target DEL", "GET /a\u{7F}b HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("target with fragment", "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("target with quote", "GET /a\"b HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("target with backslash", "GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("target with braces", "GET /a{b}|c^d`e<f> HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("value CR CR LF", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n"),
    ("request line CR only", "GET / HTTP/1.1\rHost: h\r\n\r\n"),
    ("space inside name", "GET / HTTP/1.1\r\nHost: h\r\nX y: 1\r\n\r\n"),
    ("space before method", " GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("empty line before request", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("version HTTP/1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n"),
    ("version HTTP/01.1", "GET / HTTP/01.1\r\nHost: h\r\n\r\n"),
    ("TE identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"),
    ("TE empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n"),
    ("TE ,chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n"),
    ("TE chunked,", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n"),
    ("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    ("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    ("extension method", "FOO-BAR / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  ]

  static var cases: [Case] {
    var all: [Case] = requestVectors.map { Case(name: $0.name, raw: bytes($0.raw)) }
    all += chunkedBodyVectors.map {
      Case(name: "chunked body \($0.0.debugDescription)", raw: bytes(chunkedHead + $0.0))
    }
    all += probes.map { Case(name: $0.0, raw: bytes($0.1)) }
    all += validRequests.map { Case(name: $0.0, raw: bytes($0.1), valid: true) }
    return all
  }

  /// Where llhttp rejects and we accept, by design. Each entry is a request the HTTP grammar allows and
  /// that frames the same for every parser, so it carries no smuggling risk.
  static let llhttpStricter: [String: String] = [
    // llhttp accepts only the methods it knows; RFC 9110 §9.1 makes any token a method and Envoy forwards
    // extension methods. Framing does not depend on the method name (except CONNECT/HEAD, checked exactly).
    "extension method": "llhttp's method allow-list",
    "lower-case method": "llhttp's method allow-list (methods are case-sensitive tokens; 'get' is not GET)",
  ]

  /// Where we reject and llhttp does not (reject-only strictness: never a smuggling risk, each a reason).
  static let oursStricterThanLLHTTP: [String: String] = [
    "TE gzip, chunked": "we forward only chunked or nothing (Envoy: 501 for other codings)",
    "TE on HTTP/1.0": "RFC 9112 §6.1: TE in HTTP/1.0 is a smuggling signal; llhttp waits for a body",
    "double space": "RFC 9112 §3: exactly one SP between request-line parts",
    "HTTP/0.9": "no HTTP/0.9",
    "asterisk not OPTIONS": "RFC 9112 §3.2.4: asterisk-form only with OPTIONS",
    "CONNECT origin-form": "RFC 9112 §3.2.3: CONNECT takes authority-form",
    "version 2.0": "an HTTP/2 request line is no HTTP/1 request",
    "missing Host": "RFC 9112 §3.2: HTTP/1.1 requests must carry Host",
    "duplicate Host": "RFC 9112 §3.2: exactly one Host",
    "duplicate Host 1.0": "RFC 9112 §3.2: exactly one Host",
    "Connection nominates CL":
      "Connection must not nominate framing headers (they would be stripped hop-by-hop)",
    "Connection nominates Host": "Connection must not nominate Host",
    "Connection nominates 11": "Envoy's limit of 10 Connection tokens",
    "CONNECT with body": "a CONNECT request has no body; its bytes become the tunnel",
    "CONNECT with TE": "a CONNECT request has no body; its bytes become the tunnel",
    "chunked body \"5;=v\\r\\nhello\\r\\n\"": "a chunk extension needs a name (RFC 9112 §7.1.1)",
    "chunked body \"5;a=\\r\\nhello\\r\\n\"":
      "a chunk extension value is a token or quoted-string, never empty",
    "chunked body \"5;a=b\\\"c\\\"\\r\\nhello\\r\\n\"": "a token value cannot continue with a quoted-string",
    "chunked body \"8000000000000000\\r\\n\"": "chunk sizes stop at 2^63-1; llhttp reads up to 2^64-1",
    "TE empty": "an empty Transfer-Encoding is no coding we can frame",
    "TE ,chunked": "an empty list element in Transfer-Encoding is rejected, not skipped",
    "HTTP/2 preface": "no HTTP/2 prior knowledge on an HTTP/1 listener",
  ]

  /// Where h11 rejects and we accept, by design.
  static let h11Stricter: [String: String] = [
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line (llhttp and
    // Envoy do). It frames nothing, so no parser can read a different message out of it.
    "empty line before request": "h11 refuses what RFC 9112 §2.2 says to skip"
  ]

  // Where we reject and h11 accepts is not listed: h11 is lenient by design (bare LF line ends, obs-fold,
  // control characters in values, any chunk-extension text, Transfer-Encoding silently winning over
  // Content-Length), and each of those cases is either in `oursStricterThanLLHTTP` or rejected by llhttp.

  @Test(
    "llhttp and h11 reject nothing that our codec accepts",
    .enabled(if: IndependentParsers.gate.shouldRun, "\(IndependentParsers.gate.what) missing"))
  func agreement() throws {
    guard IndependentParsers.gate.require() else { return }
    let cases = Self.cases
    #expect(Set(cases.map(\.name)).count == cases.count, "case names must be unique")
    let theirs = try IndependentParsers.judge(cases)
    var llhttpOnly: [String] = []
    var h11Only: [String] = []
    var oursOverLLHTTP: [String] = []
    for c in cases {
      let ours = Self.ourVerdict(c.raw)
      guard let them = theirs[c.name] else {
        Issue.record("no verdict from the independent parsers for \(c.name)")
        continue
      }
      if c.valid {
        #expect(ours == .accept, "our codec: \(c.name)")
        #expect(them.llhttp.verdict == .accept, "llhttp: \(c.name): \(them.llhttp.reason)")
        #expect(them.h11.verdict == .accept, "h11: \(c.name): \(them.h11.reason)")
      }
      if them.llhttp.verdict == .reject && ours != .reject { llhttpOnly.append(c.name) }
      if them.h11.verdict == .reject && ours != .reject { h11Only.append(c.name) }
      if ours == .reject && them.llhttp.verdict != .reject { oursOverLLHTTP.append(c.name) }
    }
    for name in llhttpOnly where Self.llhttpStricter[name] == nil {
      Issue.record("llhttp rejects \(name) (\(theirs[name]?.llhttp.reason ?? "")), our codec does not")
    }
    for name in h11Only where Self.h11Stricter[name] == nil {
      Issue.record("h11 rejects \(name) (\(theirs[name]?.h11.reason ?? "")), our codec does not")
    }
    #expect(Set(llhttpOnly) == Set(Self.llhttpStricter.keys))
    #expect(Set(h11Only) == Set(Self.h11Stricter.keys))
    #expect(Set(oursOverLLHTTP) == Set(Self.oursStricterThanLLHTTP.keys))
  }

  /// Our codec over the whole input at once: head parser, then the body framer, message after message.
  static func ourVerdict(_ raw: [UInt8]) -> Verdict {
    var pending = raw[...]
    var complete = 0
    while !pending.isEmpty {
      let result = pending.withUnsafeBytes { HTTP1HeadParser.parseRequest($0) }
      switch result {
      case .incomplete:
        return complete > 0 ? .accept : .incomplete
      case .invalid:
        return .reject
      case .complete(let head, let framing):
        pending = pending.dropFirst(head.length)
        if framing == .upgrade { return .accept }  // what follows is the tunnel's, not HTTP
        var framer = BodyFramer(framing)
        switch pending.withUnsafeBytes({ framer.consume($0) }) {
        case .needMore: return complete > 0 ? .accept : .incomplete
        case .invalid: return .reject
        case .complete(let n): pending = pending.dropFirst(n)
        }
        complete += 1
      }
    }
    return complete > 0 ? .accept : .incomplete
  }
}

/// Runs llhttp and h11 from python3 over a batch of inputs.
enum IndependentParsers {
  struct Judgement: Sendable {
    var verdict: IndependentParserTests.Verdict
    var reason: String
  }

  static let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
  static let inCI =
    TestEnvironment.mandatory

  struct Gate: Sendable {
    var available: Bool
    var what: String
    var shouldRun: Bool { available || IndependentParsers.inCI }
    func require(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
      if available { return true }
      Issue.record(
        "CI=true but \(what) is missing (hack/setup.sh installs it)", sourceLocation: sourceLocation)
      return false
    }
  }

  static let gate: Gate = {
    let probe = try? run([python, "-c", "import llhttp, h11"], stdin: Data(), timeout: .seconds(30))
    return Gate(available: probe?.status == 0, what: "python3 with the PyPI modules llhttp and h11")
  }()

  /// Each input through llhttp (a fresh strict `llhttp.Request`) and h11 (a fresh server `Connection`).
  static let script = """
    import base64, json, sys
    import h11, llhttp

    def by_llhttp(raw):
        done = []
        class Parser(llhttp.Request):
            def on_message_complete(self):
                done.append(1)
        try:
            Parser().execute(raw)
        except llhttp.Error as error:
            return "reject", type(error).__name__ + ": " + str(error)
        return ("accept" if done else "incomplete"), ""

    def by_h11(raw):
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(raw)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    return "incomplete", ""
                if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    return "accept", ""
        except h11.RemoteProtocolError as error:
            return "reject", "RemoteProtocolError: " + str(error)

    out = {}
    for case in json.load(sys.stdin):
        raw = base64.b64decode(case["raw"])
        out[case["name"]] = {"llhttp": by_llhttp(raw), "h11": by_h11(raw)}
    json.dump(out, sys.stdout)
    """

  /// Both parsers' judgements of each case, by case name.
  typealias Judgements = [String: (llhttp: Judgement, h11: Judgement)]

  static func judge(_ cases: [IndependentParserTests.Case]) throws -> Judgements {
    let input = try JSONSerialization.data(
      withJSONObject: cases.map { ["name": $0.name, "raw": Data($0.raw).base64EncodedString()] })
    let result = try run([python, "-c", script], stdin: input, timeout: .seconds(60))
    guard result.status == 0 else {
      throw ParserFailure(
        "python3 exited \(result.status): \(String(decoding: result.stderr, as: UTF8.self))")
    }
    guard let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: [String: [String]]]
    else { throw ParserFailure("unexpected output: \(String(decoding: result.stdout, as: UTF8.self))") }
    func judgement(_ pair: [String]?) -> Judgement {
      Judgement(
        verdict: pair?.first.flatMap(IndependentParserTests.Verdict.init(rawValue:)) ?? .incomplete,
        reason: pair?.last ?? "")
    }
    return object.mapValues { (llhttp: judgement($0["llhttp"]), h11: judgement($0["h11"])) }
  }

  struct ParserFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
  }

  /// Runs a program with `stdin`, output through files (no pipe can fill up), killed after `timeout`.
  static func run(_ arguments: [String], stdin: Data, timeout: Duration) throws -> (
    status: Int32, stdout: Data, stderr: Data
  ) {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pf-parsers-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let files = ["in", "out", "err"].map { scratch.appendingPathComponent($0) }
    try stdin.write(to: files[0])
    try Data().write(to: files[1])
    try Data().write(to: files[2])
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardInput = try FileHandle(forReadingFrom: files[0])
    process.standardOutput = try FileHandle(forWritingTo: files[1])
    process.standardError = try FileHandle(forWritingTo: files[2])
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
    if process.isRunning {
      process.terminate()
      let grace = ContinuousClock.now + .seconds(5)
      while process.isRunning && ContinuousClock.now < grace { usleep(20_000) }
      throw ParserFailure("\(arguments.prefix(2).joined(separator: " ")) did not finish within \(timeout)")
    }
    return (process.terminationStatus, try Data(contentsOf: files[1]), try Data(contentsOf: files[2]))
  }
}
