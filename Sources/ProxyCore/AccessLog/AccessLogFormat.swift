#if canImport(Glibc)
  internal import Glibc
#endif

/// An Envoy access-log format string compiled once: literal text and `%COMMAND%` operators. Unknown
/// operators are a configuration error, as in Envoy. Missing values print `-`.
package struct AccessLogFormat: Sendable {
  enum Token: Sendable {
    case literal(String)
    case startTime
    case duration
    case bytesReceived, bytesSent
    case responseFlags, responseCode
    case downstreamRemoteAddress, downstreamRemoteAddressWithoutPort
    case downstreamLocalAddress, downstreamLocalAddressWithoutPort
    case upstreamHost, upstreamCluster, upstreamLocalAddress
    case requestedServerName, protocolName, connectionTerminationDetails, routeName
    /// `%REQ(X?Y):Z%`: header X, else Y, truncated to Z.
    case request([String], Int?)
    case response([String], Int?)
  }

  let tokens: [Token]

  package init(_ format: String) throws(ProxyConfigError) {
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
      tokens.append(try Self.token(command))
    }
    literal += rest
    if !literal.isEmpty { tokens.append(.literal(literal)) }
    self.tokens = tokens
  }

  private static func token(_ command: String) throws(ProxyConfigError) -> Token {
    switch command {
    case "START_TIME": return .startTime
    case "DURATION": return .duration
    case "BYTES_RECEIVED": return .bytesReceived
    case "BYTES_SENT": return .bytesSent
    case "RESPONSE_FLAGS": return .responseFlags
    case "RESPONSE_CODE": return .responseCode
    case "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS": return .downstreamRemoteAddress
    case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT":
      return .downstreamRemoteAddressWithoutPort
    case "DOWNSTREAM_LOCAL_ADDRESS": return .downstreamLocalAddress
    case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT": return .downstreamLocalAddressWithoutPort
    case "UPSTREAM_HOST": return .upstreamHost
    case "UPSTREAM_CLUSTER": return .upstreamCluster
    case "UPSTREAM_LOCAL_ADDRESS": return .upstreamLocalAddress
    case "REQUESTED_SERVER_NAME": return .requestedServerName
    case "PROTOCOL": return .protocolName
    case "CONNECTION_TERMINATION_DETAILS": return .connectionTerminationDetails
    case "ROUTE_NAME": return .routeName
    default: break
    }
    for (prefix, isRequest) in [("REQ(", true), ("RESP(", false)] where command.hasPrefix(prefix) {
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
      return isRequest ? .request(names, limit) : .response(names, limit)
    }
    throw ProxyConfigError("format", "unknown command operator %\(command)%")
  }

  /// Compiles the formats of a filter's access logs; errors name `access_log[i]`.
  package static func compile(
    _ logs: [AccessLogConfig]
  ) throws(ProxyConfigError) -> [(path: String, format: AccessLogFormat)] {
    var formats: [(path: String, format: AccessLogFormat)] = []
    for (i, log) in logs.enumerated() {
      do {
        formats.append((log.path, try AccessLogFormat(log.format)))
      } catch {
        throw error.prefixed("access_log[\(i)]")
      }
    }
    return formats
  }

  package func render(_ entry: AccessLogEntry) -> String {
    var out = ""
    out.reserveCapacity(160)
    for token in tokens {
      switch token {
      case .literal(let text): out += text
      case .startTime: out += Self.iso8601(entry.startTime)
      case .duration: out += String(entry.durationMs)
      case .bytesReceived: out += String(entry.bytesReceived)
      case .bytesSent: out += String(entry.bytesSent)
      case .responseFlags:
        out += entry.responseFlags.isEmpty ? "-" : entry.responseFlags.joined(separator: ",")
      case .responseCode: out += String(entry.responseCode ?? 0)
      case .downstreamRemoteAddress: out += entry.downstreamRemote?.envoyDescription ?? "-"
      case .downstreamRemoteAddressWithoutPort: out += entry.downstreamRemote?.ipAddress ?? "-"
      case .downstreamLocalAddress: out += entry.downstreamLocal?.envoyDescription ?? "-"
      case .downstreamLocalAddressWithoutPort: out += entry.downstreamLocal?.ipAddress ?? "-"
      case .upstreamHost: out += entry.upstreamHost ?? "-"
      case .upstreamCluster: out += entry.upstreamCluster ?? "-"
      case .upstreamLocalAddress: out += entry.upstreamLocal?.envoyDescription ?? "-"
      case .requestedServerName: out += entry.requestedServerName ?? "-"
      case .protocolName: out += entry.protocolName ?? "-"
      case .connectionTerminationDetails: out += entry.connectionTerminationDetails ?? "-"
      case .routeName: out += entry.routeName ?? "-"
      case .request(let names, let limit): out += Self.header(entry.requestHeader, names, limit)
      case .response(let names, let limit): out += Self.header(entry.responseHeader, names, limit)
      }
    }
    return out
  }

  private static func header(_ lookup: (@Sendable (String) -> String?)?, _ names: [String], _ limit: Int?)
    -> String
  {
    guard let lookup else { return "-" }
    for name in names {
      if let value = lookup(name) {
        guard let limit, value.count > limit else { return value }
        return String(value.prefix(limit))
      }
    }
    return "-"
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
