import EnvoyAPI
import NIOCore
import SwiftProtobuf
import Testing

@testable import ProxyCore

@Suite("Access loggers and access-log filters that Istio sets")
struct AccessLogConfigTests {
  let context = FilterBuildContext(
    stats: try! StatsStore(config: StatsConfig()), accessLog: AccessLogSink(validateOnly: true))

  func accessLog(_ json: String) throws -> (AccessLogConfig, [ProxyConfigWarning]) {
    EnvoyAPIMessageTypes.registerWithAny()
    let proto = try Envoy_Config_Accesslog_V3_AccessLog(jsonString: json)
    var warnings: [ProxyConfigWarning] = []
    let config = try AccessLogConfig(proto, path: "access_log[0]", warnings: &warnings)
    return (config, warnings)
  }

  @Test func stdoutAndStderrLoggersWriteToTheProcessStreams() throws {
    let (stdout, noWarnings) = try accessLog(
      #"""
      {"name":"envoy.access_loggers.stdout","typed_config":{
        "@type":"type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
        "log_format":{"text_format_source":{"inline_string":"%RESPONSE_CODE% %ROUTE_NAME%\n"},"omit_empty_values":true}}}
      """#)
    #expect(stdout.path == "/dev/stdout")
    #expect(stdout.format == .text("%RESPONSE_CODE% %ROUTE_NAME%\n"))
    #expect(stdout.omitEmptyValues)
    #expect(stdout.filter == nil)
    #expect(noWarnings.isEmpty)
    let (stderr, _) = try accessLog(
      #"{"name":"envoy.access_loggers.stderr","typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"}}"#
    )
    #expect(stderr.path == "/dev/stderr")
    #expect(stderr.format == .text(AccessLogConfig.defaultFormat))
  }

  @Test func jsonFormatsBecomeSortedTemplates() throws {
    let (config, _) = try accessLog(
      #"""
      {"name":"envoy.access_loggers.file","typed_config":{
        "@type":"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog","path":"/dev/stdout",
        "log_format":{"json_format":{"z":"%RESPONSE_CODE%","a":{"p":"%PROTOCOL%"},"n":1,"f":1.5,"b":false},
          "formatters":[{"name":"envoy.formatter.req_without_query","typed_config":{
            "@type":"type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"}}]}}}
      """#)
    #expect(
      config.format
        == .json(
          .object([
            .init(key: "a", value: .object([.init(key: "p", value: .format("%PROTOCOL%"))])),
            .init(key: "b", value: .literal("false")),
            .init(key: "f", value: .literal("1.5")),
            .init(key: "n", value: .literal("1")),
            .init(key: "z", value: .format("%RESPONSE_CODE%")),
          ]), typed: true))
    let (legacy, _) = try accessLog(
      #"{"typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog","path":"/dev/null","json_format":{"c":"%RESPONSE_CODE%"}}}"#
    )
    #expect(
      legacy.format == .json(.object([.init(key: "c", value: .format("%RESPONSE_CODE%"))]), typed: false))
  }

  @Test func loggerAndFormatterErrorsNameTheField() throws {
    #expect(
      throws: ProxyConfigError(
        "access_log[0].typed_config",
        "unsupported access logger type \"type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig\""
      )
    ) {
      let proto = Envoy_Config_Accesslog_V3_AccessLog.with {
        $0.typedConfig = Google_Protobuf_Any.with {
          $0.typeURL = "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"
        }
      }
      var warnings: [ProxyConfigWarning] = []
      _ = try AccessLogConfig(proto, path: "access_log[0]", warnings: &warnings)
    }
    #expect(
      throws: ProxyConfigError(
        "access_log[0].typed_config.log_format.formatters[0]",
        "unsupported formatter \"envoy.formatter.cel\" ()")
    ) {
      _ = try accessLog(
        #"{"typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog","log_format":{"text_format":"x","formatters":[{"name":"envoy.formatter.cel"}]}}}"#
      )
    }
  }

  @Test func filtersAreConvertedOrAcceptedWithAWarning() throws {
    let (config, warnings) = try accessLog(
      #"""
      {"name":"envoy.access_loggers.file",
       "filter":{"or_filter":{"filters":[
         {"status_code_filter":{"comparison":{"op":"GE","value":{"default_value":500,"runtime_key":"k"}}}},
         {"response_flag_filter":{"flags":["NR","UF"]}},
         {"and_filter":{"filters":[{"duration_filter":{"comparison":{"op":"LE","value":{"default_value":10,"runtime_key":"d"}}}},
                                   {"not_health_check_filter":{}}]}},
         {"extension_filter":{"name":"envoy.access_loggers.extension_filters.cel"}}]}},
       "typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog","path":"/dev/stdout"}}
      """#)
    #expect(
      config.filter
        == .or([
          .statusCode(.atLeast(500)), .responseFlags(["NR", "UF"]), .and([.duration(.atMost(10)), .pass]),
          .pass,
        ]))
    #expect(
      warnings == [
        ProxyConfigWarning(
          "access_log[0].filter.or_filter.filters[3].extension_filter",
          "extension filter \"envoy.access_loggers.extension_filters.cel\" (CEL) is not evaluated; every entry is logged"
        )
      ])
    #expect(throws: ProxyConfigError("access_log[0].filter.and_filter.filters", "needs at least 2 filters")) {
      _ = try accessLog(
        #"{"filter":{"and_filter":{"filters":[{"not_health_check_filter":{}}]}},"typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}}"#
      )
    }
  }

  @Test func tcpProxyAccessLogWarningsReachTheListener() throws {
    EnvoyAPIMessageTypes.registerWithAny()
    let proto = try Envoy_Config_Listener_V3_Listener(
      jsonString: #"""
        {"name":"l","address":{"socket_address":{"address":"0.0.0.0","port_value":15001}},
         "access_log":[{"name":"envoy.access_loggers.file","filter":{"response_flag_filter":{"flags":["NR"]}},
           "typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog","path":"/dev/stdout"}}],
         "filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{
           "@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"s","cluster":"c",
           "access_log":[{"name":"envoy.access_loggers.stderr","filter":{"grpc_status_filter":{"statuses":["UNAVAILABLE"]}},
             "typed_config":{"@type":"type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
               "log_format":{"json_format":{"code":"%RESPONSE_CODE%"}}}}]}}]}]}
        """#)
    var warnings: [ProxyConfigWarning] = []
    let model = try Listener(proto, filters: .withTcpProxy(), context: context, warnings: &warnings)
    #expect(
      warnings == [
        ProxyConfigWarning(
          "access_log[0]", "listener access logs (connections no filter chain takes) are not written yet"),
        ProxyConfigWarning(
          "filter_chains[0].filters[0].typed_config.access_log[0].filter.grpc_status_filter",
          "gRPC status filters are not evaluated yet; every entry is logged"),
      ])
    let tcp = try #require(model.filterChains.first?.terminal as? TcpProxyFilter)
    #expect(tcp.accessLogs.map(\.path) == ["/dev/stderr"])
    #expect(tcp.accessLogs.first?.filter == .pass)
  }
}
