package import EnvoyAPI
internal import SwiftProtobuf

/// A request the client writes on its ADS stream.
package enum ADSRequest: Sendable, Equatable {
  case stateOfTheWorld(Envoy_Service_Discovery_V3_DiscoveryRequest)
  case delta(Envoy_Service_Discovery_V3_DeltaDiscoveryRequest)

  package var typeURL: String {
    switch self {
    case .stateOfTheWorld(let request): request.typeURL
    case .delta(let request): request.typeURL
    }
  }
}

/// The ADS protocol without I/O, for both variants: subscriptions, per-type versions and nonces, ACK and
/// NACK, client-side validation of responses, and what to resend on a new stream. Events go in (stream
/// opened or closed, a response, the subscriber's verdict, a subscription change); the requests to write
/// come out, in order.
///
/// One update is applied at a time: after ``received(_:)-(DiscoveryResponse)`` returns
/// ``ResponseAction/apply(_:)`` the next response is fed only after ``finishApply(nack:)``. Requests that
/// subscription changes produce meanwhile are held and come out of ``finishApply(nack:)`` ahead of the ACK
/// or NACK (Envoy's order: the EDS request a CDS update causes, then the CDS ACK).
package struct ADSStreamState: Sendable {
  /// What to do with a response.
  package enum ResponseAction: Sendable, Equatable {
    /// Valid: hand the update to the subscriber, then call ``finishApply(nack:)`` with its verdict.
    case apply(XDSUpdate)
    /// Invalid: the subscriber sees nothing; write `requests` (the NACK). `reason` is its message.
    case reject(reason: String, requests: [ADSRequest])
  }

  /// One resource type's state.
  struct TypeState: Sendable {
    var subscription: XDSSubscription = .names([])

    // Kept across streams.
    /// State of the world: the `version_info` last accepted.
    var acceptedVersion = ""
    /// State of the world, full-state types: the names of the last accepted update.
    var knownNames: Set<String> = []
    /// Delta: the version of every resource held (accepted updates only).
    var resourceVersions: [String: String] = [:]

    // This stream's.
    /// The nonce of the last response of this type.
    var nonce = ""
    /// A request of this type went out on this stream.
    var sentOnStream = false
    /// Delta: the subscription the server has for this stream (`"*"` for the wildcard).
    var streamNames: Set<String> = []
    /// State of the world: a request with explicit names went out on this stream, so a wildcard must now
    /// be spelled `"*"` (an empty list would unsubscribe everything).
    var namedOnStream = false
    /// A subscription change not yet sent.
    var dirty = false

    /// The names to subscribe on the wire (delta), `"*"` standing for the wildcard.
    var wanted: Set<String> {
      switch subscription {
      case .wildcard: ["*"]
      case .names(let names): names
      }
    }

    /// Whether a resource named `name` is of interest.
    func wants(_ name: String) -> Bool {
      switch subscription {
      case .wildcard: true
      case .names(let names): names.contains(name)
      }
    }
  }

  /// The update handed to the subscriber and what accepting it records.
  struct PendingApply: Sendable {
    var typeURL: String
    var nonce: String
    var versionInfo: String
    /// State of the world, full-state types: the names the update holds.
    var names: Set<String>?
    /// Delta: versions to record and names to forget.
    var versions: [String: String] = [:]
    var removed: [String] = []
  }

  package let api: ADSClientConfiguration.API
  package let node: Envoy_Config_Core_V3_Node
  package let setNodeOnFirstMessageOnly: Bool

  var types: [String: TypeState] = [:]
  /// A stream is open: requests can be written.
  private(set) var streamOpen = false
  /// The node went out on this stream.
  var nodeSent = false
  private(set) var applying: PendingApply?

  package init(
    api: ADSClientConfiguration.API, node: Envoy_Config_Core_V3_Node, setNodeOnFirstMessageOnly: Bool
  ) {
    self.api = api
    self.node = node
    self.setNodeOnFirstMessageOnly = setNodeOnFirstMessageOnly
  }

  /// Whether an update is with the subscriber.
  package var isApplying: Bool { applying != nil }

  /// The interest in `typeURL`, if one was ever set.
  package func subscription(_ typeURL: String) -> XDSSubscription? {
    types[typeURL]?.subscription
  }

  /// State of the world: the version last accepted for `typeURL` ("" before any).
  package func acceptedVersion(_ typeURL: String) -> String {
    types[typeURL]?.acceptedVersion ?? ""
  }

  /// Delta: the versions of the resources of `typeURL` held.
  package func resourceVersions(_ typeURL: String) -> [String: String] {
    types[typeURL]?.resourceVersions ?? [:]
  }

  // MARK: Events

  /// A new stream is open: one request per type of interest, CDS, EDS, LDS, RDS first. State of the world:
  /// each with the version last accepted and no nonce; delta: each with every subscription re-listed and
  /// the version of every resource held (`initial_resource_versions`).
  package mutating func streamOpened() -> [ADSRequest] {
    streamOpen = true
    nodeSent = false
    applying = nil
    for typeURL in types.keys {
      types[typeURL]?.nonce = ""
      types[typeURL]?.sentOnStream = false
      types[typeURL]?.streamNames = []
      types[typeURL]?.namedOnStream = false
      types[typeURL]?.dirty = true
    }
    return flush()
  }

  /// The stream ended. An update still with the subscriber is forgotten (its response is sent again on
  /// the next stream).
  package mutating func streamClosed() {
    streamOpen = false
    applying = nil
  }

  /// Sets the interest in `typeURL`. Returns the requests to write now: none while no stream is open or
  /// while an update is being applied (they come out of ``finishApply(nack:)``), none when nothing changed.
  package mutating func setSubscription(_ typeURL: String, _ subscription: XDSSubscription) -> [ADSRequest] {
    var state = types[typeURL] ?? TypeState()
    guard types[typeURL] == nil || state.subscription != subscription else { return [] }
    state.subscription = subscription
    state.dirty = true
    if case .names(let names) = subscription {
      // Delta: what is no longer subscribed is no longer held, and not claimed on the next stream.
      state.resourceVersions = state.resourceVersions.filter { names.contains($0.key) }
    }
    types[typeURL] = state
    return flush()
  }

  /// The subscriber's verdict on the update of the last ``ResponseAction/apply(_:)``: nil accepts it (the
  /// versions are recorded), a message rejects it. Returns the subscription requests held during the apply,
  /// then the ACK or NACK.
  package mutating func finishApply(nack: String?) -> [ADSRequest] {
    guard let pending = applying else { return [] }
    applying = nil
    // Taken out of the table while it changes, so it is uniquely referenced: no copy of its (mesh-sized)
    // name sets and version maps per update.
    if nack == nil, var state = types.removeValue(forKey: pending.typeURL) {
      switch api {
      case .stateOfTheWorld:
        state.acceptedVersion = pending.versionInfo
        if let names = pending.names { state.knownNames = names }
      case .delta:
        for name in pending.removed { state.resourceVersions[name] = nil }
        state.resourceVersions.merge(pending.versions) { _, new in new }
      }
      types[pending.typeURL] = state
    }
    var requests = flush(except: pending.typeURL)
    requests.append(responseRequest(pending.typeURL, nonce: pending.nonce, nack: nack))
    return requests
  }

  // MARK: Requests

  /// The requests for every type whose subscription changed, in the stable type order.
  mutating func flush(except skipped: String? = nil) -> [ADSRequest] {
    guard streamOpen, applying == nil else { return [] }
    var requests: [ADSRequest] = []
    for typeURL in types.keys.sorted(by: XDSTypeURL.precedes)
    where typeURL != skipped && types[typeURL]?.dirty == true {
      if let request = subscriptionRequest(typeURL) { requests.append(request) }
    }
    return requests
  }

  /// A request carrying `typeURL`'s subscription change, if it has one to send.
  private mutating func subscriptionRequest(_ typeURL: String) -> ADSRequest? {
    guard var state = types[typeURL] else { return nil }
    state.dirty = false
    defer { types[typeURL] = state }
    switch api {
    case .stateOfTheWorld:
      // Before the type's first request on a stream, "no interest" needs no request (and an empty
      // `resource_names` would read as a wildcard subscription).
      if !state.sentOnStream, state.subscription == .names([]) { return nil }
      return .stateOfTheWorld(stamp(sotwRequest(typeURL, &state, nack: nil)))
    case .delta:
      let first = !state.sentOnStream
      let wanted = state.wanted
      if first ? wanted.isEmpty : wanted == state.streamNames { return nil }
      var request = deltaRequest(typeURL, &state, nack: nil)
      if first { request.initialResourceVersions = state.resourceVersions }
      return .delta(stamp(request))
    }
  }

  /// The ACK (no `nack`) or NACK of the last response of `typeURL`, with any subscription change of the
  /// type folded in.
  mutating func responseRequest(_ typeURL: String, nonce: String, nack: String?) -> ADSRequest {
    let known = types[typeURL] != nil
    var state = types.removeValue(forKey: typeURL) ?? TypeState()  // uniquely referenced while it changes
    let interestChanged = state.dirty
    state.dirty = false
    state.nonce = nonce
    defer { if known { types[typeURL] = state } }
    switch api {
    case .stateOfTheWorld:
      return .stateOfTheWorld(stamp(sotwRequest(typeURL, &state, nack: nack)))
    case .delta:
      let first = !state.sentOnStream
      var request = deltaRequest(typeURL, &state, nack: nack, interestChanged: interestChanged || first)
      request.responseNonce = state.nonce
      if first, !state.streamNames.isEmpty { request.initialResourceVersions = state.resourceVersions }
      return .delta(stamp(request))
    }
  }

  /// State of the world: the request for `typeURL` as things stand: the version last accepted, the last
  /// nonce, the current names (none for a wildcard, Envoy's legacy form, or `"*"` once the stream had
  /// names for the type).
  private func sotwRequest(_ typeURL: String, _ state: inout TypeState, nack: String?)
    -> Envoy_Service_Discovery_V3_DiscoveryRequest
  {
    var request = Envoy_Service_Discovery_V3_DiscoveryRequest()
    request.typeURL = typeURL
    request.versionInfo = state.acceptedVersion
    request.responseNonce = state.nonce
    switch state.subscription {
    case .wildcard:
      if state.namedOnStream { request.resourceNames = ["*"] }
    case .names(let names):
      request.resourceNames = names.sorted()
      state.namedOnStream = true
    }
    state.sentOnStream = true
    if let nack { request.errorDetail = Self.errorDetail(nack) }
    return request
  }

  /// Delta: a request for `typeURL` carrying the difference between the wanted subscription and the
  /// stream's (which it then updates).
  /// `interestChanged` false (an ACK while the subscription stayed as sent) skips the difference, which is
  /// empty then and costs a pass over every subscribed name.
  private func deltaRequest(
    _ typeURL: String, _ state: inout TypeState, nack: String?, interestChanged: Bool = true
  ) -> Envoy_Service_Discovery_V3_DeltaDiscoveryRequest {
    var request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest()
    request.typeURL = typeURL
    if interestChanged {
      let wanted = state.wanted
      request.resourceNamesSubscribe = wanted.subtracting(state.streamNames).sorted()
      request.resourceNamesUnsubscribe = state.streamNames.subtracting(wanted).sorted()
      state.streamNames = wanted
    }
    state.sentOnStream = true
    if let nack { request.errorDetail = Self.errorDetail(nack) }
    return request
  }

  /// Puts the node on `request` when it is due: on the stream's first request, or on every one.
  private mutating func stamp<Request: NodeCarrying>(_ request: Request) -> Request {
    guard !setNodeOnFirstMessageOnly || !nodeSent else { return request }
    nodeSent = true
    var request = request
    request.node = node
    return request
  }

  /// `error_detail` of a NACK: INTERNAL (13), as Envoy sends.
  static func errorDetail(_ message: String) -> Google_Rpc_Status {
    var status = Google_Rpc_Status()
    status.code = 13
    status.message = message
    return status
  }

  /// Starts applying `pending`.
  mutating func beginApply(_ pending: PendingApply) {
    applying = pending
  }
}

/// The two request messages, for ``ADSStreamState``'s node stamping.
protocol NodeCarrying {
  var node: Envoy_Config_Core_V3_Node { get set }
}

extension Envoy_Service_Discovery_V3_DiscoveryRequest: NodeCarrying {}
extension Envoy_Service_Discovery_V3_DeltaDiscoveryRequest: NodeCarrying {}
