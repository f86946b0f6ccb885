package import EnvoyAPI
internal import SwiftProtobuf

extension ADSStreamState {
  /// Client-side validation failed: the NACK's message.
  struct Rejection: Error {
    var message: String
    init(_ message: String) { self.message = message }
  }

  /// A state-of-the-world response: validated (resource types, names, duplicates), filtered to the
  /// subscription, then handed to the subscriber; an invalid one is NACKed with the version last accepted.
  package mutating func received(_ response: Envoy_Service_Discovery_V3_DiscoveryResponse) -> ResponseAction {
    let typeURL = response.typeURL
    do throws(Rejection) {
      let state = try subscribedState(typeURL, nonce: response.nonce)
      var resources: [XDSResource] = []
      var seen: Set<String> = []
      for (index, packed) in response.resources.enumerated() {
        let resource = try Self.unwrap(packed, at: index, typeURL: typeURL, version: response.versionInfo)
        guard seen.insert(resource.name).inserted else {
          throw Rejection("resources[\(index)]: duplicate resource name '\(resource.name)'")
        }
        // Resources that were not asked for are ignored, not rejected.
        guard state.wants(resource.name) else { continue }
        resources.append(resource)
      }
      var pending = PendingApply(typeURL: typeURL, nonce: response.nonce, versionInfo: response.versionInfo)
      var removed: [String] = []
      if XDSTypeURL.fullState.contains(typeURL) {
        let names = Set(resources.map(\.name))
        removed = state.knownNames.subtracting(names).sorted()
        pending.names = names
      }
      beginApply(pending)
      return .apply(
        XDSUpdate(
          typeURL: typeURL, versionInfo: response.versionInfo, resources: resources, removed: removed,
          stateOfTheWorld: true))
    } catch {
      return .reject(
        reason: error.message,
        requests: [responseRequest(typeURL, nonce: response.nonce, nack: error.message)])
    }
  }

  /// A delta response: validated (resource types, names, duplicates), filtered to the subscription, then
  /// handed to the subscriber; an invalid one is NACKed.
  package mutating func received(_ response: Envoy_Service_Discovery_V3_DeltaDiscoveryResponse)
    -> ResponseAction
  {
    let typeURL = response.typeURL
    do throws(Rejection) {
      let state = try subscribedState(typeURL, nonce: response.nonce)
      var resources: [XDSResource] = []
      var seen: Set<String> = []
      for (index, resource) in response.resources.enumerated() {
        let name = resource.name.isEmpty ? resource.resourceName.name : resource.name
        guard !name.isEmpty else { throw Rejection("resources[\(index)]: the resource has no name") }
        guard seen.insert(name).inserted else {
          throw Rejection("resources[\(index)]: duplicate resource name '\(name)'")
        }
        // A resource without a body only refreshes a TTL, which this client does not track.
        guard resource.hasResource else { continue }
        guard resource.resource.typeURL == typeURL else {
          throw Rejection(
            "resources[\(index)] ('\(name)'): type URL '\(resource.resource.typeURL)' does not match the "
              + "response's '\(typeURL)'")
        }
        guard state.wants(name) else { continue }
        resources.append(XDSResource(name: name, version: resource.version, resource: resource.resource))
      }
      var removed: [String] = []
      var removedSeen: Set<String> = []
      for name in response.removedResources + response.removedResourceNames.map(\.name)
      where !name.isEmpty && (state.wants(name) || state.resourceVersions[name] != nil) {
        if removedSeen.insert(name).inserted { removed.append(name) }
      }
      var pending = PendingApply(
        typeURL: typeURL, nonce: response.nonce, versionInfo: response.systemVersionInfo)
      pending.versions = Dictionary(resources.map { ($0.name, $0.version) }) { _, last in last }
      pending.removed = removed
      beginApply(pending)
      return .apply(
        XDSUpdate(
          typeURL: typeURL, versionInfo: response.systemVersionInfo, resources: resources, removed: removed,
          stateOfTheWorld: false))
    } catch {
      return .reject(
        reason: error.message,
        requests: [responseRequest(typeURL, nonce: response.nonce, nack: error.message)])
    }
  }

  /// Records `nonce` for `typeURL` and returns its state; throws when the type was never subscribed on
  /// this stream.
  private mutating func subscribedState(_ typeURL: String, nonce: String) throws(Rejection) -> TypeState {
    guard var state = types[typeURL], state.sentOnStream else {
      throw Rejection("\(typeURL): not subscribed")
    }
    state.nonce = nonce
    types[typeURL] = state
    return state
  }

  /// A state-of-the-world resource, unwrapped from `envoy.service.discovery.v3.Resource` when wrapped,
  /// checked to be of the response's type, and named.
  static func unwrap(_ packed: Google_Protobuf_Any, at index: Int, typeURL: String, version: String)
    throws(Rejection) -> XDSResource
  {
    var body = packed
    var name = ""
    var version = version
    if packed.typeURL == XDSTypeURL.resourceWrapper {
      let wrapper: Envoy_Service_Discovery_V3_Resource
      do {
        wrapper = try Envoy_Service_Discovery_V3_Resource(serializedBytes: packed.value)
      } catch {
        throw Rejection("resources[\(index)]: cannot decode envoy.service.discovery.v3.Resource: \(error)")
      }
      guard wrapper.hasResource else {
        throw Rejection(
          "resources[\(index)]: the envoy.service.discovery.v3.Resource wrapper has no resource")
      }
      body = wrapper.resource
      name = wrapper.name.isEmpty ? wrapper.resourceName.name : wrapper.name
      if !wrapper.version.isEmpty { version = wrapper.version }
    }
    guard body.typeURL == typeURL else {
      throw Rejection(
        "resources[\(index)]: type URL '\(body.typeURL)' does not match the response's '\(typeURL)'")
    }
    if name.isEmpty { name = try resourceName(of: body, at: index) }
    guard !name.isEmpty else { throw Rejection("resources[\(index)]: the resource has no name") }
    return XDSResource(name: name, version: version, resource: body)
  }

  /// The name inside a resource of one of the known types (state-of-the-world resources carry no name of
  /// their own), found by decoding it.
  static func resourceName(of packed: Google_Protobuf_Any, at index: Int) throws(Rejection) -> String {
    func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ name: (M) -> String) throws(Rejection) -> String {
      do {
        return name(try M(serializedBytes: packed.value))
      } catch {
        throw Rejection("resources[\(index)]: cannot decode \(M.protoMessageName): \(error)")
      }
    }
    switch packed.typeURL {
    case XDSTypeURL.cluster: return try decode(Envoy_Config_Cluster_V3_Cluster.self) { $0.name }
    case XDSTypeURL.listener: return try decode(Envoy_Config_Listener_V3_Listener.self) { $0.name }
    case XDSTypeURL.endpoint:
      return try decode(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self) { $0.clusterName }
    case XDSTypeURL.route: return try decode(Envoy_Config_Route_V3_RouteConfiguration.self) { $0.name }
    case XDSTypeURL.secret:
      return try decode(Envoy_Extensions_TransportSockets_Tls_V3_Secret.self) { $0.name }
    default:
      throw Rejection(
        "resources[\(index)]: the name of a \(packed.typeURL) resource is unknown without an "
          + "envoy.service.discovery.v3.Resource wrapper")
    }
  }
}
