internal import EnvoyAPI
internal import PilotfishKit
internal import ProxyCore
internal import SwiftProtobuf

/// The `/config_dump` query parameters that select and trim, as Envoy's admin handler reads them:
///
/// - `resource=<field>`: only the entries of that repeated field (e.g. `static_clusters`,
///   `dynamic_listeners`), each as its own `Any` (`@type` `…ClustersConfigDump.StaticCluster`);
///   404 when no dump in the response has the field.
/// - `mask=<path>[,<path>…]`: a FieldMask applied to each resource (with `resource`) or to each top-level
///   dump. Paths use proto field names and may continue into an `Any` (`cluster.name`); `@type` is kept.
/// - `name_regex=<regex>`: only resources whose name matches (partial match, as Envoy).
///
/// Works on the dump's proto3 JSON, where an `Any` is inlined with its `@type`, so a mask can reach into
/// packed resources without knowing their types.
struct ConfigDumpQuery {
  var resource: String?
  var mask: [[Substring]] = []
  var nameFilter: StatsFilter?

  /// Each repeated resource field of the dump messages, with the message type of its entries.
  static let resourceFields: [(field: String, type: any Message.Type)] = [
    ("static_clusters", Envoy_Admin_V3_ClustersConfigDump.StaticCluster.self),
    ("dynamic_active_clusters", Envoy_Admin_V3_ClustersConfigDump.DynamicCluster.self),
    ("dynamic_warming_clusters", Envoy_Admin_V3_ClustersConfigDump.DynamicCluster.self),
    ("static_endpoint_configs", Envoy_Admin_V3_EndpointsConfigDump.StaticEndpointConfig.self),
    ("dynamic_endpoint_configs", Envoy_Admin_V3_EndpointsConfigDump.DynamicEndpointConfig.self),
    ("static_listeners", Envoy_Admin_V3_ListenersConfigDump.StaticListener.self),
    ("dynamic_listeners", Envoy_Admin_V3_ListenersConfigDump.DynamicListener.self),
    ("static_route_configs", Envoy_Admin_V3_RoutesConfigDump.StaticRouteConfig.self),
    ("dynamic_route_configs", Envoy_Admin_V3_RoutesConfigDump.DynamicRouteConfig.self),
    ("static_secrets", Envoy_Admin_V3_SecretsConfigDump.StaticSecret.self),
    ("dynamic_active_secrets", Envoy_Admin_V3_SecretsConfigDump.DynamicSecret.self),
    ("dynamic_warming_secrets", Envoy_Admin_V3_SecretsConfigDump.DynamicSecret.self),
  ]

  /// A query parameter that cannot be used; the admin handler answers with `status`.
  struct Failure: Error {
    var status: Int
    var message: String
  }

  init(resource: String?, mask: String?, nameRegex: String?) throws(Failure) {
    if let resource, !resource.isEmpty { self.resource = resource }
    if let mask {
      self.mask = mask.split(separator: ",").map {
        $0.split(separator: ".", omittingEmptySubsequences: false)
      }
      if self.mask.contains(where: { $0.contains(where: \.isEmpty) }) {
        throw Failure(status: 400, message: "mask '\(mask)': a path has an empty field name")
      }
    }
    if let nameRegex, !nameRegex.isEmpty {
      do {
        nameFilter = try StatsFilter(nameRegex)
      } catch {
        throw Failure(status: 400, message: "name_regex '\(nameRegex)' is not a valid regex")
      }
    }
  }

  var isPlain: Bool { resource == nil && mask.isEmpty && nameFilter == nil }

  /// Applies the query to the dump's JSON (`{"configs":[…]}`), returning the JSON to send.
  func apply(to dumpJSON: String, dumpTypes: [any Message.Type]) throws(Failure) -> String {
    let dump: JSONValue
    do {
      dump = try JSONValue.parseJSON(dumpJSON)
    } catch {
      throw Failure(status: 500, message: "cannot re-read the config dump: \(error)")
    }
    guard case .array(let configs)? = dump["configs"] else { return dumpJSON }

    if let resource {
      guard let entry = Self.resourceFields.first(where: { $0.field == resource }) else {
        throw Failure(
          status: 404,
          message: "resource '\(resource)' is not a repeated field of any config dump; one of: "
            + Self.resourceFields.map(\.field).joined(separator: ", "))
      }
      // The dump that owns the field must be in the response (endpoints only with include_eds).
      let owner = dumpTypes.first { type in type.isPathValid(resource) }
      guard owner != nil else {
        throw Failure(
          status: 404,
          message: "resource '\(resource)' is not in this config dump (endpoints need include_eds)")
      }
      try validate(against: [entry.type], what: entry.type.protoMessageName)
      var items: [JSONValue] = []
      for config in configs {
        guard case .array(let entries)? = config[resource] else { continue }
        for item in entries where matchesName(item) {
          let trimmed = mask.isEmpty ? item : Self.trim(item, to: mask)
          items.append(Self.withType(trimmed, "type.googleapis.com/" + entry.type.protoMessageName))
        }
      }
      return JSONValue.object(["configs": .array(items)]).jsonText(pretty: false, escapingHTML: false) + "\n"
    }

    try validate(against: dumpTypes, what: "any config dump")
    let resourceNames = Set(Self.resourceFields.map(\.field))
    let out = configs.map { config -> JSONValue in
      var config = config
      if nameFilter != nil, case .object(let members) = config {
        var filtered = members
        for (key, value) in members {
          guard resourceNames.contains(key), case .array(let entries) = value else { continue }
          filtered[key] = .array(entries.filter(matchesName))
        }
        config = .object(filtered)
      }
      return mask.isEmpty ? config : Self.trim(config, to: mask)
    }
    return JSONValue.object(["configs": .array(out)]).jsonText(pretty: false, escapingHTML: false) + "\n"
  }

  /// Every mask path must start with a field of one of `types` (the rest may run inside an `Any`).
  private func validate(against types: [any Message.Type], what: String) throws(Failure) {
    for path in mask {
      let first = String(path[0])
      if !types.contains(where: { $0.isPathValid(first) }) {
        throw Failure(
          status: 400,
          message: "mask path '\(path.joined(separator: "."))': '\(first)' is not a field of \(what)")
      }
    }
  }

  private func matchesName(_ item: JSONValue) -> Bool {
    guard let nameFilter else { return true }
    guard let name = Self.resourceName(item) else { return false }
    return nameFilter.matches(name)
  }

  /// A resource entry's name: its own `name`, else the `name` (or `cluster_name`) of the resource it wraps.
  static func resourceName(_ item: JSONValue) -> String? {
    if case .string(let name)? = item["name"] { return name }
    guard case .object(let members) = item else { return nil }
    for member in members {
      if case .string(let name)? = member.value["name"] { return name }
      if case .string(let name)? = member.value["cluster_name"] { return name }
    }
    return nil
  }

  /// Keeps the members named by `paths` (a path ending at a member keeps all of it); `@type` stays.
  static func trim(_ value: JSONValue, to paths: [[Substring]]) -> JSONValue {
    switch value {
    case .array(let elements):
      return .array(elements.map { trim($0, to: paths) })
    case .object(let members):
      var kept = JSONValue.Object()
      for member in members {
        if member.key == "@type" {
          kept[member.key] = member.value
          continue
        }
        let below = paths.filter { $0[0] == member.key[...] }
        if below.isEmpty { continue }
        if below.contains(where: { $0.count == 1 }) {
          kept[member.key] = member.value
        } else {
          kept[member.key] = trim(member.value, to: below.map { Array($0.dropFirst()) })
        }
      }
      return .object(kept)
    default:
      return value
    }
  }

  private static func withType(_ value: JSONValue, _ typeURL: String) -> JSONValue {
    guard case .object(let members) = value else { return value }
    var typed: JSONValue.Object = ["@type": .string(typeURL)]
    for (key, member) in members where key != "@type" { typed[key] = member }
    return .object(typed)
  }
}
