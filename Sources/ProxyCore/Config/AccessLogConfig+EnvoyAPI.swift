package import EnvoyAPI
internal import SwiftProtobuf

extension AccessLogConfig {
  static let fileType = Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog.protoMessageName
  static let stdoutType = Envoy_Extensions_AccessLoggers_Stream_V3_StdoutAccessLog.protoMessageName
  static let stderrType = Envoy_Extensions_AccessLoggers_Stream_V3_StderrAccessLog.protoMessageName

  /// A file (`envoy.access_loggers.file`), stdout or stderr (`envoy.access_loggers.stdout`/`stderr`)
  /// access logger; other logger types are rejected by name. Filters that are accepted but not evaluated
  /// are reported in `warnings` (paths relative to `path`'s parent).
  package init(
    _ proto: Envoy_Config_Accesslog_V3_AccessLog, path: String, warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    guard case .typedConfig(let any)? = proto.configType else {
      throw ProxyConfigError(path, "access log \"\(proto.name)\" needs a typed_config")
    }
    let typed = path + ".typed_config"
    let destination: String
    var format = Format.text(AccessLogConfig.defaultFormat)
    var omitEmptyValues = false
    switch ExtensionTypes.messageName(any.typeURL) {
    case Self.fileType:
      let file: Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog
      do {
        file = try Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog(serializedBytes: any.value)
      } catch {
        throw ProxyConfigError(typed, "cannot decode FileAccessLog: \(error)")
      }
      guard !file.path.isEmpty else { throw ProxyConfigError(typed + ".path", "must not be empty") }
      destination = file.path
      switch file.accessLogFormat {
      case .format(let text)?:
        if !text.isEmpty { format = .text(text) }
      case .logFormat(let substitution)?:
        (format, omitEmptyValues) = try Self.format(substitution, path: typed + ".log_format")
      case .jsonFormat(let fields)?:
        format = .json(Self.template(fields), typed: false)
      case .typedJsonFormat(let fields)?:
        format = .json(Self.template(fields), typed: true)
      case nil:
        break
      }
    case Self.stdoutType, Self.stderrType:
      let substitution: Envoy_Config_Core_V3_SubstitutionFormatString?
      do {
        if ExtensionTypes.messageName(any.typeURL) == Self.stdoutType {
          let stream = try Envoy_Extensions_AccessLoggers_Stream_V3_StdoutAccessLog(
            serializedBytes: any.value)
          if case .logFormat(let f)? = stream.accessLogFormat { substitution = f } else { substitution = nil }
          destination = "/dev/stdout"
        } else {
          let stream = try Envoy_Extensions_AccessLoggers_Stream_V3_StderrAccessLog(
            serializedBytes: any.value)
          if case .logFormat(let f)? = stream.accessLogFormat { substitution = f } else { substitution = nil }
          destination = "/dev/stderr"
        }
      } catch {
        throw ProxyConfigError(typed, "cannot decode \(ExtensionTypes.messageName(any.typeURL)): \(error)")
      }
      if let substitution {
        (format, omitEmptyValues) = try Self.format(substitution, path: typed + ".log_format")
      }
    default:
      throw ProxyConfigError(typed, "unsupported access logger type \"\(any.typeURL)\"")
    }
    var filter: AccessLogFilter?
    if proto.hasFilter {
      filter = try AccessLogFilter(proto.filter, path: path + ".filter", warnings: &warnings)
    }
    self.init(path: destination, format: format, omitEmptyValues: omitEmptyValues, filter: filter)
  }

  /// `SubstitutionFormatString`: the format and `omit_empty_values`.
  static func format(
    _ proto: Envoy_Config_Core_V3_SubstitutionFormatString, path: String
  ) throws(ProxyConfigError) -> (Format, Bool) {
    for (i, formatter) in proto.formatters.enumerated() {
      // `%REQ_WITHOUT_QUERY(...)%` is built in; Istio names its formatter whenever a format uses it.
      let typeName =
        formatter.hasTypedConfig ? ExtensionTypes.messageName(formatter.typedConfig.typeURL) : ""
      guard
        typeName == Envoy_Extensions_Formatter_ReqWithoutQuery_V3_ReqWithoutQuery.protoMessageName
          || (typeName.isEmpty && formatter.name == "envoy.formatter.req_without_query")
      else {
        throw ProxyConfigError(
          "\(path).formatters[\(i)]", "unsupported formatter \"\(formatter.name)\" (\(typeName))")
      }
    }
    let format: Format
    switch proto.format {
    case .textFormat(let text)?:
      format = .text(text)
    case .textFormatSource(let source)?:
      guard case .inlineString(let text)? = source.specifier else {
        throw ProxyConfigError(path + ".text_format_source", "only inline_string is supported")
      }
      format = .text(text)
    case .jsonFormat(let fields)?:
      format = .json(template(fields), typed: true)
    case nil:
      format = .text(AccessLogConfig.defaultFormat)
    }
    return (format, proto.omitEmptyValues)
  }

  /// A Struct as a format dictionary, keys sorted.
  static func template(_ fields: Google_Protobuf_Struct) -> AccessLogJSONTemplate {
    .object(fields.fields.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: template($0.value)) })
  }

  static func template(_ value: Google_Protobuf_Value) -> AccessLogJSONTemplate {
    switch value.kind {
    case .stringValue(let text)?: return .format(text)
    case .structValue(let fields)?: return template(fields)
    case .listValue(let list)?: return .list(list.values.map { template($0) })
    case .boolValue(let flag)?: return .literal(flag ? "true" : "false")
    case .numberValue(let number)?:
      guard number.isFinite else { return .literal("null") }
      if number == number.rounded(), abs(number) < 9_007_199_254_740_992 {
        return .literal(String(Int64(number)))
      }
      return .literal("\(number)")
    case .nullValue?, nil: return .literal("null")
    }
  }
}

extension AccessLogFilter {
  /// Validates an `AccessLogFilter`. Filters the proxy cannot evaluate yet pass everything, with a warning.
  package init(
    _ proto: Envoy_Config_Accesslog_V3_AccessLogFilter, path: String, warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    func notEvaluated(_ field: String, _ why: String) -> AccessLogFilter {
      warnings.append(ProxyConfigWarning("\(path).\(field)", "\(why); every entry is logged"))
      return .pass
    }
    switch proto.filterSpecifier {
    case .statusCodeFilter(let filter)?:
      self = .statusCode(
        try Self.comparison(filter.comparison, path: path + ".status_code_filter.comparison"))
    case .durationFilter(let filter)?:
      self = .duration(try Self.comparison(filter.comparison, path: path + ".duration_filter.comparison"))
    case .notHealthCheckFilter?:
      // No health-check filter marks requests as health checks here.
      self = .pass
    case .traceableFilter?:
      self = notEvaluated("traceable_filter", "tracing is not implemented")
    case .runtimeFilter(let filter)?:
      guard !filter.runtimeKey.isEmpty else {
        throw ProxyConfigError(path + ".runtime_filter.runtime_key", "must not be empty")
      }
      let percent = filter.percentSampled
      let denominator: UInt64
      switch percent.denominator {
      case .hundred: denominator = 100
      case .tenThousand: denominator = 10_000
      case .million: denominator = 1_000_000
      default:
        throw ProxyConfigError(path + ".runtime_filter.percent_sampled.denominator", "unknown denominator")
      }
      self = .sample(numerator: UInt64(percent.numerator), denominator: denominator)
    case .andFilter(let filter)?:
      self = .and(try Self.list(filter.filters, path: path + ".and_filter.filters", warnings: &warnings))
    case .orFilter(let filter)?:
      self = .or(try Self.list(filter.filters, path: path + ".or_filter.filters", warnings: &warnings))
    case .headerFilter?:
      self = notEvaluated("header_filter", "header filters are not evaluated yet")
    case .responseFlagFilter(let filter)?:
      self = .responseFlags(filter.flags)
    case .grpcStatusFilter?:
      self = notEvaluated("grpc_status_filter", "gRPC status filters are not evaluated yet")
    case .extensionFilter(let filter)?:
      self = notEvaluated("extension_filter", "extension filter \"\(filter.name)\" (CEL) is not evaluated")
    case .metadataFilter?:
      self = notEvaluated("metadata_filter", "dynamic metadata is not kept")
    case .logTypeFilter?:
      self = notEvaluated("log_type_filter", "log types are not distinguished")
    case nil:
      throw ProxyConfigError(path, "needs a filter")
    }
  }

  private static func list(
    _ filters: [Envoy_Config_Accesslog_V3_AccessLogFilter], path: String, warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) -> [AccessLogFilter] {
    guard filters.count >= 2 else { throw ProxyConfigError(path, "needs at least 2 filters") }
    var out: [AccessLogFilter] = []
    for (i, filter) in filters.enumerated() {
      out.append(try AccessLogFilter(filter, path: "\(path)[\(i)]", warnings: &warnings))
    }
    return out
  }

  /// The runtime key is not consulted: the default value applies.
  private static func comparison(
    _ proto: Envoy_Config_Accesslog_V3_ComparisonFilter, path: String
  ) throws(ProxyConfigError) -> Comparison {
    let value = proto.value.defaultValue
    switch proto.op {
    case .eq: return .equal(value)
    case .ge: return .atLeast(value)
    case .le: return .atMost(value)
    default: throw ProxyConfigError(path + ".op", "unknown comparison")
    }
  }
}
