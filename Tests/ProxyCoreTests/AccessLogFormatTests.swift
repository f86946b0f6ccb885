import EnvoyAPI
import NIOCore
import SwiftProtobuf
import Testing

@testable import ProxyCore

@Suite("Access-log formats: Istio's operators, text and JSON, omit_empty_values")
struct AccessLogFormatTests {
  /// Istio's `EnvoyTextLogFormat` (pilot/pkg/model/telemetry_logging.go), what istiod sends with
  /// `meshConfig.accessLogFile` set.
  static let istioTextFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
    + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" "
    + "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" "
    + "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" "
    + "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% "
    + "%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"

  /// Istio's `EnvoyJSONLogFormatIstio` (meshConfig.accessLogEncoding JSON).
  static let istioJSONFormat: [String: String] = [
    "start_time": "%START_TIME%", "route_name": "%ROUTE_NAME%", "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%", "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
  ]

  /// A proxied HTTP request as the connection manager reports it.
  static func httpEntry() throws -> AccessLogEntry {
    var entry = AccessLogEntry(startTime: 1_767_323_045_678_000_000)  // 2026-01-02T03:04:05.678Z
    entry.durationMs = 12
    entry.downstreamRemote = try SocketAddress(ipAddress: "10.1.0.7", port: 51234)
    entry.downstreamLocal = try SocketAddress(ipAddress: "10.1.0.9", port: 8080)
    entry.upstreamHost = "10.1.0.20:9080"
    entry.upstreamLocal = try SocketAddress(ipAddress: "10.1.0.9", port: 40000)
    entry.upstreamCluster = "outbound|9080||reviews.default.svc.cluster.local"
    entry.bytesReceived = 0
    entry.bytesSent = 295
    entry.protocolName = "HTTP/1.1"
    entry.responseCode = 200
    entry.responseCodeDetails = "via_upstream"
    entry.routeName = "default"
    let request = [
      ":method": "GET", ":path": "/reviews/0?x=1", ":authority": "reviews:9080", "user-agent": "curl/8.5.0",
      "x-request-id": "f1b5c8b6-3a3e-4c8e-9c1f-5e3c3c2b1a00",
    ]
    let response = ["x-envoy-upstream-service-time": "11"]
    entry.requestHeader = { request[$0] }
    entry.responseHeader = { response[$0] }
    return entry
  }

  @Test func istioDefaultTextFormatRendersExactly() throws {
    let format = try AccessLogFormat(Self.istioTextFormat)
    #expect(
      format.render(try Self.httpEntry())
        == "[2026-01-02T03:04:05.678Z] \"GET /reviews/0?x=1 HTTP/1.1\" 200 - via_upstream - \"-\" 0 295 12 11 "
        + "\"-\" \"curl/8.5.0\" \"f1b5c8b6-3a3e-4c8e-9c1f-5e3c3c2b1a00\" \"reviews:9080\" \"10.1.0.20:9080\" "
        + "outbound|9080||reviews.default.svc.cluster.local 10.1.0.9:40000 10.1.0.9:8080 10.1.0.7:51234 - default\n"
    )
  }

  @Test func istioDefaultTextFormatForAFailedTCPConnection() throws {
    var entry = AccessLogEntry(startTime: 1_767_323_045_000_000_000)
    entry.downstreamRemote = try SocketAddress(ipAddress: "10.1.0.7", port: 51234)
    entry.downstreamLocal = try SocketAddress(ipAddress: "10.96.0.1", port: 443)
    entry.upstreamCluster = "outbound|443||kubernetes.default.svc.cluster.local"
    entry.upstreamHost = "10.0.0.1:6443"
    entry.responseFlags = ["UF"]
    entry.upstreamTransportFailureReason = "delayed connect error: Connection refused"
    entry.connectionTerminationDetails = "upstream connect error: Connection refused"
    let line = try AccessLogFormat(Self.istioTextFormat).render(entry)
    #expect(
      line
        == "[2026-01-02T03:04:05.000Z] \"- - -\" 0 UF - upstream connect error: Connection refused "
        + "\"delayed_connect_error:_Connection_refused\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"10.0.0.1:6443\" "
        + "outbound|443||kubernetes.default.svc.cluster.local - 10.96.0.1:443 10.1.0.7:51234 - -\n")
  }

  @Test func omitEmptyValuesPrintsNothingForMissingValues() throws {
    let format = try AccessLogFormat("[%ROUTE_NAME%|%REQ(X-MISSING)%|%RESPONSE_CODE%]", omitEmptyValues: true)
    #expect(format.render(AccessLogEntry(startTime: 0)) == "[||0]")
    #expect(try AccessLogFormat("[%ROUTE_NAME%]").render(AccessLogEntry(startTime: 0)) == "[-]")
  }

  @Test func upstreamClusterPrefersTheObservabilityName() throws {
    var entry = AccessLogEntry(startTime: 0)
    entry.upstreamCluster = "xds-grpc"
    entry.upstreamClusterObservabilityName = "xds-grpc;"
    #expect(
      try AccessLogFormat("%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%").render(entry) == "xds-grpc; xds-grpc")
  }

  @Test func headerOperatorsAndRequestWithoutQuery() throws {
    let format = try AccessLogFormat(
      "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQUEST_HEADER(:METHOD)% %RESPONSE_HEADER(x-envoy-upstream-service-time)% %REQ(USER-AGENT):4%"
    )
    #expect(format.render(try Self.httpEntry()) == "/reviews/0 GET 11 curl")
  }

  @Test func unknownOperatorsAreErrors() {
    #expect(throws: ProxyConfigError("format", "unknown command operator %NOT_AN_OPERATOR%")) {
      _ = try AccessLogFormat("%NOT_AN_OPERATOR%")
    }
  }

  // MARK: JSON

  static func jsonTemplate(_ fields: [String: String]) -> AccessLogJSONTemplate {
    .object(fields.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .format($0.value)) })
  }

  @Test func istioJSONFormatIsTypedAndSorted() throws {
    let format = try AccessLogFormat(.json(Self.jsonTemplate(Self.istioJSONFormat), typed: true))
    let line = format.render(try Self.httpEntry())
    #expect(
      line
        == #"{"authority":"reviews:9080","bytes_received":0,"bytes_sent":295,"connection_termination_details":null,"#
        + #""downstream_local_address":"10.1.0.9:8080","downstream_remote_address":"10.1.0.7:51234","duration":12,"#
        + #""method":"GET","path":"/reviews/0?x=1","protocol":"HTTP/1.1","request_id":"f1b5c8b6-3a3e-4c8e-9c1f-5e3c3c2b1a00","#
        + #""requested_server_name":null,"response_code":200,"response_code_details":"via_upstream","response_flags":"-","#
        + #""route_name":"default","start_time":"2026-01-02T03:04:05.678Z","#
        + #""upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local","upstream_host":"10.1.0.20:9080","#
        + #""upstream_local_address":"10.1.0.9:40000","upstream_service_time":"11","upstream_transport_failure_reason":null,"#
        + #""user_agent":"curl/8.5.0","x_forwarded_for":null}"# + "\n")
  }

  @Test func jsonOmitEmptyValuesDropsMissingKeys() throws {
    let template = AccessLogJSONTemplate.object([
      .init(key: "code", value: .format("%RESPONSE_CODE%")),
      .init(key: "mixed", value: .format("route=%ROUTE_NAME%")),
      .init(key: "nested", value: .object([.init(key: "route", value: .format("%ROUTE_NAME%"))])),
      .init(key: "route", value: .format("%ROUTE_NAME%")),
      .init(key: "static", value: .literal("true")),
    ])
    let entry = AccessLogEntry(startTime: 0)
    #expect(
      try AccessLogFormat(.json(template, typed: true), omitEmptyValues: true).render(entry)
        == #"{"code":0,"mixed":"route=","nested":{},"static":true}"# + "\n")
    #expect(
      try AccessLogFormat(.json(template, typed: true)).render(entry)
        == #"{"code":0,"mixed":"route=-","nested":{"route":null},"route":null,"static":true}"# + "\n")
    // FileAccessLog's deprecated json_format: every value a string, missing ones "-".
    #expect(
      try AccessLogFormat(.json(template, typed: false)).render(entry)
        == #"{"code":"0","mixed":"route=-","nested":{"route":"-"},"route":"-","static":true}"# + "\n")
  }

  @Test func jsonStringsAreEscaped() throws {
    var entry = AccessLogEntry(startTime: 0)
    let request = ["user-agent": "a \"quoted\"\tagent\\<x>"]
    entry.requestHeader = { request[$0] }
    let template = AccessLogJSONTemplate.object([.init(key: "ua\"", value: .format("%REQ(USER-AGENT)%"))])
    #expect(
      try AccessLogFormat(.json(template, typed: true)).render(entry)
        == #"{"ua\"":"a \"quoted\"\tagent\\<x>"}"# + "\n")
  }

  @Test func jsonErrorsNameTheKey() {
    let template = AccessLogJSONTemplate.object([.init(key: "bad", value: .format("%NOPE%"))])
    #expect(throws: ProxyConfigError("json_format.bad", "unknown command operator %NOPE%")) {
      _ = try AccessLogFormat(.json(template, typed: true))
    }
  }

  // MARK: Filters

  @Test func filtersDecideWhatIsLogged() {
    var entry = AccessLogEntry(startTime: 0)
    entry.responseCode = 503
    entry.durationMs = 40
    entry.responseFlags = ["UF"]
    #expect(AccessLogFilter.statusCode(.atLeast(500)).matches(entry))
    #expect(!AccessLogFilter.statusCode(.equal(200)).matches(entry))
    #expect(AccessLogFilter.duration(.atMost(40)).matches(entry))
    #expect(AccessLogFilter.responseFlags([]).matches(entry))
    #expect(AccessLogFilter.responseFlags(["NR", "UF"]).matches(entry))
    #expect(!AccessLogFilter.responseFlags(["NR"]).matches(entry))
    #expect(!AccessLogFilter.and([.statusCode(.atLeast(500)), .responseFlags(["NR"])]).matches(entry))
    #expect(AccessLogFilter.or([.statusCode(.equal(200)), .responseFlags(["UF"])]).matches(entry))
    #expect(AccessLogFilter.sample(numerator: 100, denominator: 100).matches(entry))
    #expect(!AccessLogFilter.sample(numerator: 0, denominator: 100).matches(entry))
    entry.responseFlags = []
    #expect(!AccessLogFilter.responseFlags([]).matches(entry))
  }
}
