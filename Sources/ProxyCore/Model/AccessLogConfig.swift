/// One access log of a tcp_proxy or HTTP connection manager: where to write (a file path; `/dev/stdout`
/// and `/dev/stderr` for `envoy.access_loggers.stdout`/`stderr` and for file loggers naming them), the
/// format with Envoy's command operators (`%DOWNSTREAM_REMOTE_ADDRESS%`, `%BYTES_SENT%` …), and which
/// connections or requests are logged (`filter`).
package struct AccessLogConfig: Sendable, Equatable {
  /// Envoy's `SubstitutionFormatString`: a format string, or a format dictionary written as one JSON
  /// object per line.
  package enum Format: Sendable, Equatable {
    case text(String)
    /// `typed`: a value that is one command operator alone renders as a number (numeric operators), a
    /// string, or `null` when missing (`SubstitutionFormatString.json_format`, `typed_json_format`); not
    /// typed: every value is a string and a missing one is `"-"` (FileAccessLog's deprecated `json_format`).
    case json(AccessLogJSONTemplate, typed: Bool)
  }

  package var path: String
  package var format: Format
  /// Missing values print nothing instead of `-` (text), or their keys are left out (typed JSON).
  package var omitEmptyValues = false
  /// nil: everything is logged.
  package var filter: AccessLogFilter?

  /// Envoy's default text format.
  package static let defaultFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
    + "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" "
    + "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"

  package init(path: String, format: String = AccessLogConfig.defaultFormat) {
    self.path = path
    self.format = .text(format)
  }

  package init(path: String, format: Format, omitEmptyValues: Bool = false, filter: AccessLogFilter? = nil) {
    self.path = path
    self.format = format
    self.omitEmptyValues = omitEmptyValues
    self.filter = filter
  }
}

/// A format dictionary (`json_format`) as configured: string values are format strings; keys print in
/// sorted order (a protobuf Struct keeps none).
package indirect enum AccessLogJSONTemplate: Sendable, Equatable {
  package struct Field: Sendable, Equatable {
    package var key: String
    package var value: AccessLogJSONTemplate

    package init(key: String, value: AccessLogJSONTemplate) {
      self.key = key
      self.value = value
    }
  }

  /// A format string with command operators.
  case format(String)
  case object([Field])
  case list([AccessLogJSONTemplate])
  /// A number, `true`, `false` or `null` from the configuration, as JSON text.
  case literal(String)
}

/// Envoy's access-log filters (`AccessLog.filter`) that decide per connection or request whether a line
/// is written.
package indirect enum AccessLogFilter: Sendable, Equatable {
  package enum Comparison: Sendable, Equatable {
    case equal(UInt32), atLeast(UInt32), atMost(UInt32)

    func holds(_ value: Int64) -> Bool {
      switch self {
      case .equal(let bound): value == Int64(bound)
      case .atLeast(let bound): value >= Int64(bound)
      case .atMost(let bound): value <= Int64(bound)
      }
    }
  }

  /// `status_code_filter` (0 when there was no response, as Envoy).
  case statusCode(Comparison)
  /// `duration_filter`, in milliseconds.
  case duration(Comparison)
  /// `response_flag_filter`: any of these flags; empty: any flag at all.
  case responseFlags([String])
  /// `runtime_filter`: logs `numerator` out of `denominator` at random (the runtime key is not consulted).
  case sample(numerator: UInt64, denominator: UInt64)
  case and([AccessLogFilter])
  case or([AccessLogFilter])
  /// A filter that passes everything: `not_health_check_filter` (no health-check filter marks requests
  /// here), and the filters accepted with a warning but not evaluated yet.
  case pass

  /// Whether `entry` is logged.
  package func matches(_ entry: AccessLogEntry) -> Bool {
    switch self {
    case .statusCode(let comparison): comparison.holds(Int64(entry.responseCode ?? 0))
    case .duration(let comparison): comparison.holds(entry.durationMs)
    case .responseFlags(let flags):
      flags.isEmpty ? !entry.responseFlags.isEmpty : entry.responseFlags.contains(where: flags.contains)
    case .sample(let numerator, let denominator):
      numerator >= denominator || (numerator > 0 && UInt64.random(in: 0..<denominator) < numerator)
    case .and(let filters): filters.allSatisfy { $0.matches(entry) }
    case .or(let filters): filters.contains { $0.matches(entry) }
    case .pass: true
    }
  }
}
