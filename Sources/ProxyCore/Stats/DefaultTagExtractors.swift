/// Envoy's built-in tag extractors (`source/common/config/well_known_names.cc`, `TagNameValues`), in
/// Envoy's order: the RE2 descriptors first, then the tokenized ones. Enabled by `use_all_default_tags`
/// (default true); a tag specifier with an empty regex selects the ones with its name.
enum DefaultTagExtractors {
  enum Descriptor: Sendable {
    case regex(name: String, pattern: String, substr: String, negativeMatch: String)
    case tokens(name: String, pattern: String)

    var name: String {
      switch self {
      case .regex(let name, _, _, _), .tokens(let name, _): name
      }
    }
  }

  // Shorthands Envoy expands inside its default regexes.
  private static let tagValue = #"[^\.]+"#
  private static let address = #"(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)"#
  private static let cipher = #"[\w-]+"#
  private static let tlsVersion = #"TLSv\d\.\d"#
  private static let routeConfigName = #"[\w\-.]+"#
  private static let listenerOrCluster = #"(?:listener|cluster)\..*?"#

  private static func re(
    _ name: String, _ pattern: String, substr: String = "", negativeMatch: String = ""
  ) -> Descriptor {
    let expanded =
      pattern
      .replacing("<ADDRESS>", with: address)
      .replacing("<CIPHER>", with: cipher)
      .replacing("<TLS_VERSION>", with: tlsVersion)
      .replacing("<TAG_VALUE>", with: tagValue)
      .replacing("<ROUTE_CONFIG_NAME>", with: routeConfigName)
      .replacing("<LISTENER_OR_CLUSTER_WITH_NAME>", with: listenerOrCluster)
    return .regex(name: name, pattern: expanded, substr: substr, negativeMatch: negativeMatch)
  }

  static let descriptors: [Descriptor] = [
    re("envoy.response_code", #"_rq(_(\d{3}))$"#, substr: "_rq_"),
    re("envoy.response_code_class", #"_rq_((\d))xx$"#, substr: "_rq_"),
    re(
      "envoy.dynamo_partition_id",
      #"^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>(\.__partition_id=(\w{7}))$"#,
      substr: ".dynamodb.table."),
    re(
      "envoy.dynamo_operation",
      #"^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)(\.(<TAG_VALUE>))(?:\.|$)"#,
      substr: ".dynamodb."),
    re(
      "envoy.dynamo_table", #"^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.)"#,
      substr: ".dynamodb."),
    re("envoy.ssl_cipher", #"^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$"#, substr: ".ssl.ciphers."),
    re(
      "envoy.ssl_curve", #"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$"#,
      substr: ".ssl.curves."),
    re(
      "envoy.ssl_sigalg", #"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$"#,
      substr: ".ssl.sigalgs."),
    re(
      "envoy.ssl_version", #"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$"#,
      substr: ".ssl.versions."),
    re("cipher_suite", #"^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$"#, substr: ".ssl.ciphers."),
    re("envoy.http_conn_manager_prefix", #"^listener\..*?\.http\.((<TAG_VALUE>)\.)"#, substr: ".http."),
    re(
      "envoy.worker_id",
      #"^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)\.|server\.|listener_manager\.)worker_((\d+)\.)"#),
    re("envoy.listener_address", #"^listener\.((<ADDRESS>|<TAG_VALUE>)\.)"#, negativeMatch: "admin"),
    re(
      "envoy.rds_route_config", #"^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)\w+?$"#, substr: ".rds."),
    .tokens(name: "envoy.mongo_callsite", pattern: "mongo.*.collection.*.callsite.$.query.**"),
    .tokens(name: "envoy.mongo_collection", pattern: "mongo.*.collection.$.**.query.*"),
    .tokens(name: "envoy.mongo_cmd", pattern: "mongo.*.cmd.$.**"),
    .tokens(name: "envoy.grpc_bridge_method", pattern: "cluster.*.grpc.*.$.**"),
    .tokens(name: "envoy.http_user_agent", pattern: "http.*.user_agent.$.**"),
    .tokens(name: "envoy.virtual_cluster", pattern: "vhost.*.vcluster.$.**"),
    .tokens(name: "envoy.fault_downstream_cluster", pattern: "http.*.fault.$.**"),
    .tokens(name: "envoy.grpc_bridge_service", pattern: "cluster.*.grpc.$.**"),
    .tokens(name: "envoy.tcp_prefix", pattern: "tcp.$.**"),
    .tokens(name: "envoy.udp_prefix", pattern: "udp.$.**"),
    .tokens(name: "envoy.clientssl_prefix", pattern: "auth.clientssl.$.**"),
    .tokens(name: "envoy.ratelimit_prefix", pattern: "ratelimit.$.**"),
    .tokens(name: "envoy.cluster_name", pattern: "cluster.$.**"),
    .tokens(name: "envoy.ext_authz_prefix", pattern: "cluster.*.ext_authz.$.**"),
    .tokens(name: "envoy.ext_authz_prefix", pattern: "http.*.ext_authz.$.**"),
    .tokens(name: "envoy.http_conn_manager_prefix", pattern: "http.$.**"),
    .tokens(name: "envoy.virtual_host", pattern: "vhost.$.**"),
    .tokens(name: "envoy.mongo_prefix", pattern: "mongo.$.**"),
    .tokens(name: "envoy.route", pattern: "vhost.*.route.$.**"),
    .tokens(name: "envoy.thrift_prefix", pattern: "thrift.$.**"),
    .tokens(name: "envoy.redis_prefix", pattern: "redis.$.**"),
    .tokens(name: "envoy.local_http_ratelimit_prefix", pattern: "$.http_local_rate_limit.**"),
    .tokens(name: "envoy.local_network_ratelimit_prefix", pattern: "local_rate_limit.$.**"),
    .tokens(name: "envoy.local_listener_ratelimit_prefix", pattern: "listener_local_ratelimit.$.**"),
    .tokens(name: "envoy.dns_filter_prefix", pattern: "dns_filter.$.**"),
  ]

  static func extractor(_ descriptor: Descriptor) throws(StatsConfigError) -> TagExtractor {
    switch descriptor {
    case .regex(let name, let pattern, let substr, let negativeMatch):
      let compiled = try CompiledRegex(pattern, what: "default tag '\(name)' regex")
      return TagExtractor(
        name: name, prefix: TagExtractor.regexPrefix(pattern), substr: substr,
        rule: .defaultRegex(compiled, negativeMatch: negativeMatch))
    case .tokens(let name, let pattern):
      return TagExtractor.tokenized(name: name, pattern: pattern)
    }
  }
}
