/// A file access log (`envoy.access_loggers.file`): where to write and the format string with Envoy's
/// command operators (`%DOWNSTREAM_REMOTE_ADDRESS%`, `%BYTES_SENT%` …). `/dev/stdout` and `/dev/stderr`
/// are accepted as Envoy does.
package struct AccessLogConfig: Sendable, Equatable {
  package var path: String
  package var format: String

  /// Envoy's default text format.
  package static let defaultFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
    + "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" "
    + "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"

  package init(path: String, format: String = AccessLogConfig.defaultFormat) {
    self.path = path
    self.format = format
  }
}
