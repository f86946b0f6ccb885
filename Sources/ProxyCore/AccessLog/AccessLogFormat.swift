internal import PilotfishKit

#if canImport(Glibc)
  internal import Glibc
#endif

/// An Envoy access-log format compiled once: a format string (literal text and `%COMMAND%` operators) or
/// a format dictionary rendered as one JSON object per line. Unknown operators are a configuration error,
/// as in Envoy. A missing value prints `-` in text (nothing with `omit_empty_values`) and `null` in typed
/// JSON (the key is left out with `omit_empty_values`).
package struct AccessLogFormat: Sendable {
  /// A command operator: one value taken from the entry.
  enum Operator: Sendable, Equatable {
    case startTime
    case duration
    case bytesReceived, bytesSent
    case responseFlags, responseCode, responseCodeDetails
    case downstreamRemoteAddress, downstreamRemoteAddressWithoutPort
    case downstreamLocalAddress, downstreamLocalAddressWithoutPort
    case upstreamHost, upstreamCluster, upstreamClusterRaw, upstreamLocalAddress
    case upstreamTransportFailureReason
    case requestedServerName, protocolName, connectionTerminationDetails, routeName
    /// `%REQ(X?Y):Z%`: header X, else Y, truncated to Z.
    case request([String], Int?)
    /// `%REQ_WITHOUT_QUERY(X?Y):Z%`: as `request`, without the query string.
    case requestWithoutQuery([String], Int?)
    case response([String], Int?)

    /// Typed JSON prints these as numbers.
    var isNumeric: Bool {
      switch self {
      case .duration, .bytesReceived, .bytesSent, .responseCode: true
      default: false
      }
    }
  }

  enum Token: Sendable {
    case literal(String)
    case op(Operator)
  }

  /// A compiled format dictionary value.
  indirect enum JSONNode: Sendable {
    /// A value that is one operator alone (typed when the format is).
    case single(Operator)
    /// A string mixing text and operators.
    case text([Token])
    case literal(String)
    /// Keys already quoted, with their colon.
    case object([(key: String, value: JSONNode)])
    case list([JSONNode])
  }

  enum Body: Sendable {
    case text([Token])
    case json(JSONNode, typed: Bool)
  }

  let body: Body
  let omitEmptyValues: Bool

  /// A format string.
  package init(_ format: String, omitEmptyValues: Bool = false) throws(ProxyConfigError) {
    body = .text(try Self.tokens(format))
    self.omitEmptyValues = omitEmptyValues
  }

  package init(_ format: AccessLogConfig.Format, omitEmptyValues: Bool = false) throws(ProxyConfigError) {
    switch format {
    case .text(let text): body = .text(try Self.tokens(text))
    case .json(let template, let typed):
      body = .json(try Self.node(template, path: "json_format"), typed: typed)
    }
    self.omitEmptyValues = omitEmptyValues
  }

  private static func node(_ template: AccessLogJSONTemplate, path: String) throws(ProxyConfigError)
    -> JSONNode
  {
    switch template {
    case .format(let text):
      let tokens: [Token]
      do {
        tokens = try Self.tokens(text)
      } catch {
        throw ProxyConfigError(path, error.message)
      }
      if tokens.count == 1, case .op(let op) = tokens[0] { return .single(op) }
      return .text(tokens)
    case .literal(let text):
      return .literal(text)
    case .object(let fields):
      var out: [(key: String, value: JSONNode)] = []
      for field in fields {
        let key = JSONValue.quote(field.key, escapingHTML: false) + ":"
        out.append((key, try node(field.value, path: path + "." + field.key)))
      }
      return .object(out)
    case .list(let items):
      var out: [JSONNode] = []
      for (i, item) in items.enumerated() { out.append(try node(item, path: "\(path)[\(i)]")) }
      return .list(out)
    }
  }

  private static func tokens(_ format: String) throws(ProxyConfigError) -> [Token] {
    var tokens: [Token] = []
    var literal = ""
    var rest = Substring(format)
    while let percent = rest.firstIndex(of: "%") {
      literal += rest[..<percent]
      let afterPercent = rest.index(after: percent)
      guard let close = rest[afterPercent...].firstIndex(of: "%") else {
        throw ProxyConfigError("format", "unterminated command operator in \"\(format)\"")
      }
      let command = String(rest[afterPercent..<close])
      rest = rest[rest.index(after: close)...]
      if command.isEmpty {
        literal += "%"
        continue
      }
      if !literal.isEmpty {
        tokens.append(.literal(literal))
        literal = ""
      }
      tokens.append(.op(try Self.operator(command)))
    }
    literal += rest
    if !literal.isEmpty { tokens.append(.literal(literal)) }
    return tokens
  }

  private static func `operator`(_ command: String) throws(ProxyConfigError) -> Operator {
    switch command {
    case "START_TIME": return .startTime
    case "DURATION": return .duration
    case "BYTES_RECEIVED": return .bytesReceived
    case "BYTES_SENT": return .bytesSent
    case "RESPONSE_FLAGS": return .responseFlags
    case "RESPONSE_CODE": return .responseCode
    case "RESPONSE_CODE_DETAILS": return .responseCodeDetails
    case "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS": return .downstreamRemoteAddress
    case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT":
      return .downstreamRemoteAddressWithoutPort
    case "DOWNSTREAM_LOCAL_ADDRESS": return .downstreamLocalAddress
    case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT": return .downstreamLocalAddressWithoutPort
    case "UPSTREAM_HOST": return .upstreamHost
    case "UPSTREAM_CLUSTER": return .upstreamCluster
    case "UPSTREAM_CLUSTER_RAW": return .upstreamClusterRaw
    case "UPSTREAM_LOCAL_ADDRESS": return .upstreamLocalAddress
    case "UPSTREAM_TRANSPORT_FAILURE_REASON": return .upstreamTransportFailureReason
    case "REQUESTED_SERVER_NAME": return .requestedServerName
    case "PROTOCOL": return .protocolName
    case "CONNECTION_TERMINATION_DETAILS": return .connectionTerminationDetails
    case "ROUTE_NAME": return .routeName
    default: break
    }
    let headerOperators: [(prefix: String, kind: Int)] = [
      ("REQ(", 0), ("REQUEST_HEADER(", 0), ("RESP(", 1), ("RESPONSE_HEADER(", 1), ("REQ_WITHOUT_QUERY(", 2),
    ]
    for (prefix, kind) in headerOperators where command.hasPrefix(prefix) {
      guard let closeParen = command.lastIndex(of: ")") else {
        throw ProxyConfigError("format", "malformed \(command): missing ')'")
      }
      let names = command[command.index(command.startIndex, offsetBy: prefix.count)..<closeParen]
        .split(separator: "?").map { $0.lowercased() }
      let tail = command[command.index(after: closeParen)...]
      var limit: Int?
      if tail.hasPrefix(":") {
        guard let n = Int(tail.dropFirst()), n > 0 else {
          throw ProxyConfigError("format", "malformed length in \(command)")
        }
        limit = n
      } else if !tail.isEmpty {
        throw ProxyConfigError("format", "malformed \(command)")
      }
      guard !names.isEmpty, names.count <= 2 else {
        throw ProxyConfigError("format", "\(command) needs one header name, or two separated by '?'")
      }
      switch kind {
      case 0: return .request(names, limit)
      case 1: return .response(names, limit)
      default: return .requestWithoutQuery(names, limit)
      }
    }
    throw ProxyConfigError("format", "unknown command operator %\(command)%")
  }

  // MARK: Rendering

  /// One operator's value for an entry.
  enum Value {
    case missing
    case number(Int64)
    case unsigned(UInt64)
    case string(String)
  }

  static func value(_ op: Operator, _ entry: AccessLogEntry) -> Value {
    // An empty name or detail is a missing one, as in Envoy (an unnamed route prints `-`).
    func string(_ s: String?) -> Value {
      guard let s, !s.isEmpty else { return .missing }
      return .string(s)
    }
    switch op {
    case .startTime: return .string(iso8601(entry.startTime))
    case .duration: return .number(entry.durationMs)
    case .bytesReceived: return .unsigned(entry.bytesReceived)
    case .bytesSent: return .unsigned(entry.bytesSent)
    case .responseFlags:
      // Envoy prints `-` for no flags, in JSON too.
      return .string(entry.responseFlags.isEmpty ? "-" : entry.responseFlags.joined(separator: ","))
    case .responseCode: return .number(Int64(entry.responseCode ?? 0))
    case .responseCodeDetails: return string(entry.responseCodeDetails)
    case .downstreamRemoteAddress: return string(entry.downstreamRemote?.envoyDescription)
    case .downstreamRemoteAddressWithoutPort: return string(entry.downstreamRemote?.ipAddress)
    case .downstreamLocalAddress: return string(entry.downstreamLocal?.envoyDescription)
    case .downstreamLocalAddressWithoutPort: return string(entry.downstreamLocal?.ipAddress)
    case .upstreamHost: return string(entry.upstreamHost)
    case .upstreamCluster: return string(entry.upstreamClusterObservabilityName ?? entry.upstreamCluster)
    case .upstreamClusterRaw: return string(entry.upstreamCluster)
    case .upstreamLocalAddress: return string(entry.upstreamLocal?.envoyDescription)
    case .upstreamTransportFailureReason:
      // Envoy replaces spaces so that the value stays one field of a text line.
      guard let reason = entry.upstreamTransportFailureReason, !reason.isEmpty else { return .missing }
      return .string(String(reason.map { $0 == " " ? "_" : $0 }))
    case .requestedServerName: return string(entry.requestedServerName)
    case .protocolName: return string(entry.protocolName)
    case .connectionTerminationDetails: return string(entry.connectionTerminationDetails)
    case .routeName: return string(entry.routeName)
    case .request(let names, let limit): return header(entry.requestHeader, names, limit, dropQuery: false)
    case .requestWithoutQuery(let names, let limit):
      return header(entry.requestHeader, names, limit, dropQuery: true)
    case .response(let names, let limit): return header(entry.responseHeader, names, limit, dropQuery: false)
    }
  }

  private static func header(
    _ lookup: (@Sendable (String) -> String?)?, _ names: [String], _ limit: Int?, dropQuery: Bool
  ) -> Value {
    guard let lookup else { return .missing }
    for name in names {
      guard var value = lookup(name) else { continue }
      if dropQuery, let query = value.firstIndex(of: "?") { value = String(value[..<query]) }
      guard let limit, value.count > limit else { return .string(value) }
      return .string(String(value.prefix(limit)))
    }
    return .missing
  }

  package func render(_ entry: AccessLogEntry) -> String {
    var out = ""
    out.reserveCapacity(256)
    switch body {
    case .text(let tokens):
      appendText(tokens, entry, into: &out)
    case .json(let node, let typed):
      appendJSON(node, entry, typed: typed, into: &out)
      out += "\n"
    }
    return out
  }

  private func appendText(_ tokens: [Token], _ entry: AccessLogEntry, into out: inout String) {
    for token in tokens {
      switch token {
      case .literal(let text): out += text
      case .op(let op): appendText(Self.value(op, entry), into: &out)
      }
    }
  }

  private func appendText(_ value: Value, into out: inout String) {
    switch value {
    case .missing: if !omitEmptyValues { out += "-" }
    case .number(let n): out += String(n)
    case .unsigned(let n): out += String(n)
    case .string(let s): out += s
    }
  }

  private func appendJSON(_ node: JSONNode, _ entry: AccessLogEntry, typed: Bool, into out: inout String) {
    switch node {
    case .single(let op):
      appendJSON(Self.value(op, entry), typed: typed, into: &out)
    case .text(let tokens):
      var text = ""
      appendText(tokens, entry, into: &text)
      JSONValue.writeString(text, into: &out, escapingHTML: false)
    case .literal(let text):
      out += text
    case .object(let fields):
      out += "{"
      var first = true
      for (key, node) in fields {
        if case .single(let op) = node {
          let value = Self.value(op, entry)
          // Typed JSON with omit_empty_values leaves out the keys of missing values.
          if typed, omitEmptyValues, case .missing = value { continue }
          if !first { out += "," }
          first = false
          out += key
          appendJSON(value, typed: typed, into: &out)
        } else {
          if !first { out += "," }
          first = false
          out += key
          appendJSON(node, entry, typed: typed, into: &out)
        }
      }
      out += "}"
    case .list(let items):
      out += "["
      for (i, item) in items.enumerated() {
        if i > 0 { out += "," }
        appendJSON(item, entry, typed: typed, into: &out)
      }
      out += "]"
    }
  }

  /// One operator's value: typed (a number, a string or `null`), or as the string text prints.
  private func appendJSON(_ value: Value, typed: Bool, into out: inout String) {
    guard typed else {
      var text = ""
      appendText(value, into: &text)
      JSONValue.writeString(text, into: &out, escapingHTML: false)
      return
    }
    switch value {
    case .missing: out += "null"
    case .number(let n): out += String(n)
    case .unsigned(let n): out += String(n)
    case .string(let s): JSONValue.writeString(s, into: &out, escapingHTML: false)
    }
  }

  /// `2026-11-22T10:15:03.123Z`, as Envoy's default START_TIME.
  static func iso8601(_ nanoseconds: Int64) -> String {
    var seconds = time_t(nanoseconds / 1_000_000_000)
    let millis = Int((nanoseconds / 1_000_000) % 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ v: Int32, _ width: Int) -> String {
      let s = String(v)
      return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
      + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
  }
}

/// An access log ready to write: its destination, compiled format and filter.
package struct CompiledAccessLog: Sendable {
  package let path: String
  package let format: AccessLogFormat
  package let filter: AccessLogFilter?

  /// Compiles the formats of a filter's access logs; errors name `access_log[i]`.
  package static func compile(_ logs: [AccessLogConfig]) throws(ProxyConfigError) -> [CompiledAccessLog] {
    var out: [CompiledAccessLog] = []
    for (i, log) in logs.enumerated() {
      do {
        let format = try AccessLogFormat(log.format, omitEmptyValues: log.omitEmptyValues)
        out.append(CompiledAccessLog(path: log.path, format: format, filter: log.filter))
      } catch {
        throw error.prefixed("access_log[\(i)]")
      }
    }
    return out
  }

  /// Appends the line for `entry` to the sink when the filter lets it through.
  package func log(_ entry: AccessLogEntry, to sink: AccessLogSink) {
    if let filter, !filter.matches(entry) { return }
    sink.append(format.render(entry), to: path)
  }
}
