import EnvoyAPI
import Foundation
import SwiftProtobuf
import Testing

@testable import XDSClient

typealias DiscoveryRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse
typealias DeltaRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
typealias DeltaResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

let cds = XDSTypeURL.cluster
let eds = XDSTypeURL.endpoint
let lds = XDSTypeURL.listener
let rds = XDSTypeURL.route

func node(_ id: String = "sidecar~10.0.0.1~app.shop~shop.svc.cluster.local") -> Envoy_Config_Core_V3_Node {
  var node = Envoy_Config_Core_V3_Node()
  node.id = id
  return node
}

func cluster(_ name: String, timeout: Int64 = 1) -> Google_Protobuf_Any {
  var cluster = Envoy_Config_Cluster_V3_Cluster()
  cluster.name = name
  cluster.connectTimeout = .init(seconds: timeout)
  return try! Google_Protobuf_Any(message: cluster)
}

func assignment(_ name: String) -> Google_Protobuf_Any {
  var assignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
  assignment.clusterName = name
  return try! Google_Protobuf_Any(message: assignment)
}

func listener(_ name: String) -> Google_Protobuf_Any {
  var listener = Envoy_Config_Listener_V3_Listener()
  listener.name = name
  return try! Google_Protobuf_Any(message: listener)
}

func sotwResponse(_ type: String, _ version: String, _ nonce: String, _ resources: [Google_Protobuf_Any])
  -> DiscoveryResponse
{
  var response = DiscoveryResponse()
  response.typeURL = type
  response.versionInfo = version
  response.nonce = nonce
  response.resources = resources
  return response
}

func deltaResponse(
  _ type: String, _ nonce: String, _ resources: [(String, String, Google_Protobuf_Any)],
  removed: [String] = [],
  system: String = ""
) -> DeltaResponse {
  var response = DeltaResponse()
  response.typeURL = type
  response.nonce = nonce
  response.systemVersionInfo = system
  response.removedResources = removed
  response.resources = resources.map { name, version, body in
    var resource = Envoy_Service_Discovery_V3_Resource()
    resource.name = name
    resource.version = version
    resource.resource = body
    return resource
  }
  return response
}

extension [ADSRequest] {
  var sotw: [DiscoveryRequest] {
    compactMap { if case .stateOfTheWorld(let request) = $0 { request } else { nil } }
  }
  var delta: [DeltaRequest] {
    compactMap { if case .delta(let request) = $0 { request } else { nil } }
  }
}

extension ADSStreamState.ResponseAction {
  var update: XDSUpdate? {
    if case .apply(let update) = self { update } else { nil }
  }
  var rejection: (reason: String, requests: [ADSRequest])? {
    if case .reject(let reason, let requests) = self { (reason, requests) } else { nil }
  }
}

@Suite("ADS state machine: state of the world", .timeLimit(.minutes(5)))
struct SotWStateMachineTests {
  /// A state machine with an open stream, CDS wildcard and EDS `a` subscribed (requests discarded).
  static func subscribed(firstOnly: Bool = true) -> ADSStreamState {
    var state = ADSStreamState(api: .stateOfTheWorld, node: node(), setNodeOnFirstMessageOnly: firstOnly)
    _ = state.setSubscription(cds, .wildcard)
    _ = state.setSubscription(eds, .names(["a"]))
    _ = state.streamOpened()
    return state
  }

  /// Feeds `response` and accepts (nil) or rejects the update; returns the requests.
  static func deliver(_ state: inout ADSStreamState, _ response: DiscoveryResponse, nack: String? = nil)
    -> (XDSUpdate?, [DiscoveryRequest])
  {
    let update = state.received(response).update
    return (update, state.finishApply(nack: nack).sotw)
  }

  @Test("first requests: empty version and nonce, node on the stream's first message only, names")
  func firstRequests() {
    var state = ADSStreamState(api: .stateOfTheWorld, node: node(), setNodeOnFirstMessageOnly: true)
    #expect(state.setSubscription(eds, .names(["b", "a"])).isEmpty)
    #expect(state.setSubscription(cds, .wildcard).isEmpty)
    let requests = state.streamOpened().sotw
    #expect(requests.map(\.typeURL) == [cds, eds])
    #expect(requests.map(\.versionInfo) == ["", ""])
    #expect(requests.map(\.responseNonce) == ["", ""])
    #expect(requests[0].resourceNames == [])
    #expect(requests[1].resourceNames == ["a", "b"])
    #expect(requests[0].node.id == node().id)
    #expect(!requests[1].hasNode)
    #expect(!requests.contains { $0.hasErrorDetail })
    // Later requests carry no node either.
    let lds = state.setSubscription(XDSTypeURL.listener, .wildcard).sotw
    #expect(lds.count == 1 && !lds[0].hasNode)
  }

  @Test("without set_node_on_first_message_only every request carries the node")
  func nodeOnEveryRequest() {
    var state = Self.subscribed(firstOnly: false)
    let (_, ack) = Self.deliver(&state, sotwResponse(cds, "v1", "n1", [cluster("a")]))
    #expect(ack.count == 1 && ack[0].node.id == node().id)
    state.streamClosed()
    #expect(state.streamOpened().sotw.allSatisfy { $0.node.id == node().id })
  }

  @Test("ACK: version_info and nonce of the response, current names")
  func ack() throws {
    var state = Self.subscribed()
    let (update, requests) = Self.deliver(
      &state, sotwResponse(cds, "v1", "n1", [cluster("a"), cluster("b")]))
    let applied = try #require(update)
    #expect(applied.typeURL == cds && applied.versionInfo == "v1" && applied.stateOfTheWorld)
    #expect(applied.resources.map(\.name) == ["a", "b"])
    #expect(applied.resources.map(\.version) == ["v1", "v1"])
    #expect(applied.removed.isEmpty)
    #expect(requests.count == 1)
    #expect(
      requests[0].typeURL == cds && requests[0].versionInfo == "v1" && requests[0].responseNonce == "n1")
    #expect(requests[0].resourceNames.isEmpty && !requests[0].hasErrorDetail)

    let (_, edsAck) = Self.deliver(&state, sotwResponse(eds, "e1", "n2", [assignment("a")]))
    #expect(edsAck.map(\.resourceNames) == [["a"]])
    #expect(edsAck.map(\.versionInfo) == ["e1"])
  }

  @Test("NACK: the last accepted version, the response's nonce, INTERNAL and the message")
  func nackKeepsVersion() {
    var state = Self.subscribed()
    _ = Self.deliver(&state, sotwResponse(cds, "v1", "n1", [cluster("a")]))
    let (_, requests) = Self.deliver(
      &state, sotwResponse(cds, "v2", "n2", [cluster("a")]), nack: "clusters[a].connect_timeout: too long")
    #expect(requests.count == 1)
    #expect(requests[0].versionInfo == "v1" && requests[0].responseNonce == "n2")
    #expect(requests[0].errorDetail.code == 13)
    #expect(requests[0].errorDetail.message == "clusters[a].connect_timeout: too long")
    #expect(state.acceptedVersion(cds) == "v1")
    // The next good response is ACKed with its own version.
    let (_, next) = Self.deliver(&state, sotwResponse(cds, "v3", "n3", [cluster("a")]))
    #expect(next.map(\.versionInfo) == ["v3"] && !next[0].hasErrorDetail)
  }

  @Test("a first NACK has an empty version")
  func firstNack() {
    var state = Self.subscribed()
    let (_, requests) = Self.deliver(&state, sotwResponse(cds, "v1", "n1", [cluster("a")]), nack: "bad")
    #expect(requests.map(\.versionInfo) == [""])
    #expect(requests.map(\.responseNonce) == ["n1"])
  }

  @Test("CDS and LDS: names absent from a full-state update are removed; EDS has no implicit removal")
  func removals() throws {
    var state = Self.subscribed()
    _ = state.setSubscription(lds, .wildcard)
    _ = Self.deliver(&state, sotwResponse(cds, "v1", "n1", [cluster("a"), cluster("b"), cluster("c")]))
    let (update, _) = Self.deliver(&state, sotwResponse(cds, "v2", "n2", [cluster("b")]))
    #expect(try #require(update).removed == ["a", "c"])
    // A rejected update does not change what is held.
    _ = Self.deliver(&state, sotwResponse(cds, "v3", "n3", []), nack: "no")
    let (again, _) = Self.deliver(&state, sotwResponse(cds, "v4", "n4", []))
    #expect(try #require(again).removed == ["b"])

    _ = Self.deliver(&state, sotwResponse(lds, "l1", "n5", [listener("x"), listener("y")]))
    let (lupdate, _) = Self.deliver(&state, sotwResponse(lds, "l2", "n6", [listener("y")]))
    #expect(try #require(lupdate).removed == ["x"])

    _ = state.setSubscription(eds, .names(["a", "b"]))
    _ = Self.deliver(&state, sotwResponse(eds, "e1", "n7", [assignment("a"), assignment("b")]))
    let (eupdate, _) = Self.deliver(&state, sotwResponse(eds, "e2", "n8", [assignment("a")]))
    #expect(try #require(eupdate).removed.isEmpty)
  }

  @Test("reconnect: every type with its last accepted version, no nonce, current names, node again")
  func reconnect() {
    var state = Self.subscribed()
    _ = Self.deliver(&state, sotwResponse(cds, "v1", "n1", [cluster("a")]))
    _ = Self.deliver(&state, sotwResponse(eds, "e1", "n2", [assignment("a")]))
    _ = Self.deliver(&state, sotwResponse(cds, "v2", "n3", [cluster("a")]), nack: "no")
    state.streamClosed()
    #expect(state.setSubscription(eds, .names(["a", "b"])).isEmpty)  // remembered, not sent
    let requests = state.streamOpened().sotw
    #expect(requests.map(\.typeURL) == [cds, eds])
    #expect(requests.map(\.versionInfo) == ["v1", "e1"])
    #expect(requests.map(\.responseNonce) == ["", ""])
    #expect(requests.map(\.resourceNames) == [[], ["a", "b"]])
    #expect(requests[0].hasNode && !requests[1].hasNode)
    // Removal is still computed against what was accepted before the reconnect.
    let update = state.received(sotwResponse(cds, "v3", "n1", []))
    #expect(update.update?.removed == ["a"])
  }

  @Test("duplicate names: NACK naming the name, the subscriber sees nothing")
  func duplicate() throws {
    var state = Self.subscribed()
    _ = Self.deliver(&state, sotwResponse(cds, "v1", "n1", [cluster("a")]))
    let action = state.received(
      sotwResponse(cds, "v2", "n2", [cluster("a"), cluster("b"), cluster("a", timeout: 2)]))
    let rejection = try #require(action.rejection)
    #expect(rejection.reason.contains("duplicate resource name 'a'"))
    #expect(rejection.reason.contains("resources[2]"))
    let nack = rejection.requests.sotw
    #expect(nack.count == 1)
    #expect(nack[0].versionInfo == "v1" && nack[0].responseNonce == "n2")
    #expect(nack[0].errorDetail.code == 13 && nack[0].errorDetail.message == rejection.reason)
    #expect(!state.isApplying)
  }

  @Test("a resource of another type: NACK naming its index")
  func typeMismatch() throws {
    var state = Self.subscribed()
    let action = state.received(sotwResponse(cds, "v1", "n1", [cluster("a"), listener("b")]))
    let rejection = try #require(action.rejection)
    #expect(rejection.reason.hasPrefix("resources[1]: type URL '\(lds)'"))
    #expect(rejection.requests.sotw.map(\.versionInfo) == [""])
  }

  @Test("an undecodable resource: NACK naming its index")
  func undecodable() throws {
    var state = Self.subscribed()
    var broken = Google_Protobuf_Any()
    broken.typeURL = cds
    broken.value = Data([0x0a, 0x05, 0x61])  // a string field cut short
    let action = state.received(sotwResponse(cds, "v1", "n1", [cluster("a"), broken]))
    let rejection = try #require(action.rejection)
    #expect(rejection.reason.hasPrefix("resources[1]: cannot decode envoy.config.cluster.v3.Cluster"))
  }

  @Test("a response for a type never subscribed: NACK")
  func notSubscribed() throws {
    var state = Self.subscribed()
    let action = state.received(sotwResponse(rds, "r1", "n1", []))
    let rejection = try #require(action.rejection)
    #expect(rejection.reason == "\(rds): not subscribed")
    let nack = rejection.requests.sotw
    #expect(nack.map(\.typeURL) == [rds] && nack.map(\.responseNonce) == ["n1"])
    #expect(state.subscription(rds) == nil)
  }

  @Test("resources not subscribed are dropped, not NACKed")
  func unsubscribedDropped() throws {
    var state = Self.subscribed()
    let (update, requests) = Self.deliver(
      &state, sotwResponse(eds, "e1", "n1", [assignment("b"), assignment("a"), assignment("c")]))
    #expect(try #require(update).resources.map(\.name) == ["a"])
    #expect(requests.count == 1 && !requests[0].hasErrorDetail && requests[0].versionInfo == "e1")
  }

  @Test("resources in the envoy.service.discovery.v3.Resource wrapper: name and version from it")
  func resourceWrapper() throws {
    var state = Self.subscribed()
    var wrapper = Envoy_Service_Discovery_V3_Resource()
    wrapper.name = "wrapped"
    wrapper.version = "r7"
    wrapper.resource = cluster("inner")
    let (update, _) = Self.deliver(
      &state, sotwResponse(cds, "v1", "n1", [try Google_Protobuf_Any(message: wrapper), cluster("plain")]))
    let resources = try #require(update).resources
    #expect(resources.map(\.name) == ["wrapped", "plain"])
    #expect(resources.map(\.version) == ["r7", "v1"])
    #expect(resources[0].resource.typeURL == cds)
  }

  @Test("subscription changes during an apply go out before its ACK (EDS request, then CDS ACK)")
  func requestsDuringApplyPrecedeAck() throws {
    var state = ADSStreamState(api: .stateOfTheWorld, node: node(), setNodeOnFirstMessageOnly: true)
    _ = state.setSubscription(cds, .wildcard)
    _ = state.streamOpened()
    #expect(state.received(sotwResponse(cds, "v1", "n1", [cluster("a"), cluster("b")])).update != nil)
    #expect(state.isApplying)
    #expect(state.setSubscription(eds, .names(["a", "b"])).isEmpty)
    #expect(state.setSubscription(cds, .names(["a"])).isEmpty)  // folded into the ACK
    let requests = state.finishApply(nack: nil).sotw
    #expect(requests.map(\.typeURL) == [eds, cds])
    #expect(requests[0].resourceNames == ["a", "b"] && requests[0].versionInfo == "")
    #expect(requests[1].versionInfo == "v1" && requests[1].responseNonce == "n1")
    #expect(requests[1].resourceNames == ["a"])
    // Also before a NACK.
    #expect(state.received(sotwResponse(cds, "v2", "n2", [cluster("a")])).update != nil)
    #expect(state.setSubscription(lds, .wildcard).isEmpty)
    #expect(state.finishApply(nack: "no").sotw.map(\.typeURL) == [lds, cds])
  }

  @Test("stable type order: CDS, EDS, LDS, RDS, then others")
  func typeOrder() {
    var state = ADSStreamState(api: .stateOfTheWorld, node: node(), setNodeOnFirstMessageOnly: true)
    for type in [XDSTypeURL.secret, rds, lds, "type.googleapis.com/a.Custom", eds, cds] {
      _ = state.setSubscription(type, .names(["x"]))
    }
    #expect(
      state.streamOpened().sotw.map(\.typeURL) == [
        cds, eds, lds, rds, "type.googleapis.com/a.Custom", XDSTypeURL.secret,
      ])
  }

  @Test(
    "a wildcard after names on the same stream is spelled \"*\"; a new stream goes back to the empty form")
  func wildcardAfterNames() {
    var state = Self.subscribed()
    #expect(state.setSubscription(eds, .wildcard).sotw.map(\.resourceNames) == [["*"]])
    _ = state.received(sotwResponse(eds, "e1", "n1", [assignment("a")]))
    #expect(state.finishApply(nack: nil).sotw.map(\.resourceNames) == [["*"]])
    state.streamClosed()
    #expect(state.streamOpened().sotw.map(\.resourceNames) == [[], []])
  }

  @Test("unsubscription: empty resource_names once the type was requested; nothing before")
  func unsubscribe() {
    var state = Self.subscribed()
    let requests = state.setSubscription(eds, .names([])).sotw
    #expect(requests.map(\.typeURL) == [eds] && requests[0].resourceNames.isEmpty)
    #expect(state.setSubscription(eds, .names([])).isEmpty)  // unchanged
    #expect(state.setSubscription(rds, .names([])).isEmpty)  // never requested
    state.streamClosed()
    #expect(state.streamOpened().sotw.map(\.typeURL) == [cds])
  }
}

@Suite("ADS state machine: delta", .timeLimit(.minutes(5)))
struct DeltaStateMachineTests {
  static func subscribed(firstOnly: Bool = true) -> ADSStreamState {
    var state = ADSStreamState(api: .delta, node: node(), setNodeOnFirstMessageOnly: firstOnly)
    _ = state.setSubscription(cds, .wildcard)
    _ = state.setSubscription(eds, .names(["a", "b"]))
    _ = state.streamOpened()
    return state
  }

  static func deliver(_ state: inout ADSStreamState, _ response: DeltaResponse, nack: String? = nil)
    -> (XDSUpdate?, [DeltaRequest])
  {
    let update = state.received(response).update
    return (update, state.finishApply(nack: nack).delta)
  }

  @Test("first requests: wildcard as \"*\", names subscribed, node on the first message only")
  func firstRequests() {
    var state = ADSStreamState(api: .delta, node: node(), setNodeOnFirstMessageOnly: true)
    _ = state.setSubscription(eds, .names(["b", "a"]))
    _ = state.setSubscription(cds, .wildcard)
    _ = state.setSubscription(rds, .names([]))
    let requests = state.streamOpened().delta
    #expect(requests.map(\.typeURL) == [cds, eds])
    #expect(requests.map(\.resourceNamesSubscribe) == [["*"], ["a", "b"]])
    #expect(requests.allSatisfy { $0.resourceNamesUnsubscribe.isEmpty && $0.responseNonce.isEmpty })
    #expect(requests.allSatisfy { $0.initialResourceVersions.isEmpty && !$0.hasErrorDetail })
    #expect(requests[0].node.id == node().id && !requests[1].hasNode)

    var every = ADSStreamState(api: .delta, node: node(), setNodeOnFirstMessageOnly: false)
    _ = every.setSubscription(cds, .wildcard)
    _ = every.setSubscription(eds, .names(["a"]))
    #expect(every.streamOpened().delta.allSatisfy { $0.node.id == node().id })
  }

  @Test("interest changes: subscribe and unsubscribe lists")
  func interestChanges() {
    var state = Self.subscribed()
    let change = state.setSubscription(eds, .names(["b", "c"])).delta
    #expect(change.count == 1)
    #expect(change[0].resourceNamesSubscribe == ["c"] && change[0].resourceNamesUnsubscribe == ["a"])
    #expect(change[0].responseNonce.isEmpty && change[0].initialResourceVersions.isEmpty)
    let none = state.setSubscription(eds, .names([])).delta
    #expect(none.map(\.resourceNamesUnsubscribe) == [["b", "c"]])
    let wildcard = state.setSubscription(eds, .wildcard).delta
    #expect(wildcard.map(\.resourceNamesSubscribe) == [["*"]])
  }

  @Test("ACK: the nonce; versions recorded from Resource.version")
  func ack() throws {
    var state = Self.subscribed()
    let (update, requests) = Self.deliver(
      &state, deltaResponse(cds, "d1", [("a", "1", cluster("a")), ("b", "2", cluster("b"))], system: "s1"))
    let applied = try #require(update)
    #expect(!applied.stateOfTheWorld && applied.versionInfo == "s1")
    #expect(applied.resources.map(\.name) == ["a", "b"] && applied.resources.map(\.version) == ["1", "2"])
    #expect(requests.count == 1)
    #expect(requests[0].typeURL == cds && requests[0].responseNonce == "d1" && !requests[0].hasErrorDetail)
    #expect(requests[0].resourceNamesSubscribe.isEmpty && requests[0].resourceNamesUnsubscribe.isEmpty)
    #expect(state.resourceVersions(cds) == ["a": "1", "b": "2"])
  }

  @Test("NACK: error_detail, versions not recorded")
  func nack() {
    var state = Self.subscribed()
    _ = Self.deliver(&state, deltaResponse(cds, "d1", [("a", "1", cluster("a"))]))
    let (_, requests) = Self.deliver(
      &state, deltaResponse(cds, "d2", [("a", "2", cluster("a")), ("b", "1", cluster("b"))]), nack: "bad a")
    #expect(requests.count == 1 && requests[0].responseNonce == "d2")
    #expect(requests[0].errorDetail.code == 13 && requests[0].errorDetail.message == "bad a")
    #expect(state.resourceVersions(cds) == ["a": "1"])
  }

  @Test("removed_resources are passed on and forgotten")
  func removals() throws {
    var state = Self.subscribed()
    _ = Self.deliver(&state, deltaResponse(cds, "d1", [("a", "1", cluster("a")), ("b", "1", cluster("b"))]))
    let (update, _) = Self.deliver(&state, deltaResponse(cds, "d2", [], removed: ["a", "zz"]))
    #expect(try #require(update).removed == ["a", "zz"])  // wildcard: every removal
    #expect(state.resourceVersions(cds) == ["b": "1"])
    // Named: removals of names neither subscribed nor held are not passed on.
    let (named, _) = Self.deliver(&state, deltaResponse(eds, "d3", [], removed: ["a", "q"]))
    #expect(try #require(named).removed == ["a"])
  }

  @Test("reconnect: initial_resource_versions of every resource held, every subscription re-listed")
  func reconnect() {
    var state = Self.subscribed()
    _ = Self.deliver(&state, deltaResponse(cds, "d1", [("a", "1", cluster("a")), ("b", "2", cluster("b"))]))
    _ = Self.deliver(&state, deltaResponse(eds, "d2", [("a", "7", assignment("a"))]))
    _ = Self.deliver(&state, deltaResponse(cds, "d3", [("c", "1", cluster("c"))]), nack: "no")
    state.streamClosed()
    let requests = state.streamOpened().delta
    #expect(requests.map(\.typeURL) == [cds, eds])
    #expect(requests.map(\.resourceNamesSubscribe) == [["*"], ["a", "b"]])
    #expect(requests.map(\.initialResourceVersions) == [["a": "1", "b": "2"], ["a": "7"]])
    #expect(requests.map(\.responseNonce) == ["", ""])
    #expect(requests[0].hasNode && !requests[1].hasNode)
  }

  @Test("unsubscribed names are forgotten: not claimed on the next stream")
  func unsubscribeForgets() {
    var state = Self.subscribed()
    _ = Self.deliver(
      &state, deltaResponse(eds, "d1", [("a", "1", assignment("a")), ("b", "1", assignment("b"))]))
    _ = state.setSubscription(eds, .names(["b"]))
    state.streamClosed()
    let requests = state.streamOpened().delta
    #expect(requests.last?.initialResourceVersions == ["b": "1"])
    #expect(requests.last?.resourceNamesSubscribe == ["b"])
  }

  @Test("validation: duplicate name, type mismatch, not subscribed; the subscriber sees nothing")
  func validation() throws {
    var state = Self.subscribed()
    let duplicate = try #require(
      state.received(deltaResponse(cds, "d1", [("a", "1", cluster("a")), ("a", "2", cluster("a"))])).rejection
    )
    #expect(duplicate.reason == "resources[1]: duplicate resource name 'a'")
    let nack = duplicate.requests.delta
    #expect(
      nack.count == 1 && nack[0].responseNonce == "d1" && nack[0].errorDetail.message == duplicate.reason)

    let mismatch = try #require(
      state.received(deltaResponse(cds, "d2", [("a", "1", cluster("a")), ("l", "1", listener("l"))]))
        .rejection)
    #expect(mismatch.reason.hasPrefix("resources[1] ('l'): type URL '\(lds)'"))

    let unknown = try #require(state.received(deltaResponse(rds, "d3", [])).rejection)
    #expect(unknown.reason == "\(rds): not subscribed")
    #expect(unknown.requests.delta.map(\.responseNonce) == ["d3"])
    #expect(state.resourceVersions(cds).isEmpty && !state.isApplying)
  }

  @Test("resources not subscribed are dropped, not NACKed")
  func unsubscribedDropped() throws {
    var state = Self.subscribed()
    let (update, requests) = Self.deliver(
      &state, deltaResponse(eds, "d1", [("a", "1", assignment("a")), ("z", "1", assignment("z"))]))
    #expect(try #require(update).resources.map(\.name) == ["a"])
    #expect(!requests[0].hasErrorDetail)
    #expect(state.resourceVersions(eds) == ["a": "1"])
  }

  @Test("subscription changes during an apply go out before its ACK")
  func requestsDuringApplyPrecedeAck() {
    var state = ADSStreamState(api: .delta, node: node(), setNodeOnFirstMessageOnly: true)
    _ = state.setSubscription(cds, .wildcard)
    _ = state.streamOpened()
    #expect(state.received(deltaResponse(cds, "d1", [("a", "1", cluster("a"))])).update != nil)
    #expect(state.setSubscription(eds, .names(["a"])).isEmpty)
    let requests = state.finishApply(nack: nil).delta
    #expect(requests.map(\.typeURL) == [eds, cds])
    #expect(requests[0].resourceNamesSubscribe == ["a"] && requests[0].responseNonce.isEmpty)
    #expect(requests[1].responseNonce == "d1")
  }
}

@Suite("ADS backoff", .timeLimit(.minutes(1)))
struct BackoffTests {
  @Test("grows by the multiplier up to the maximum, within the jitter; reset starts over")
  func delays() {
    let backoff = ADSClientConfiguration.Backoff(
      initial: .seconds(1), multiplier: 2, jitter: 0.2, max: .seconds(5))
    var delays = ADSClientConfiguration.Backoff.Delays(backoff)
    let expected: [Double] = [1, 2, 4, 5, 5]
    for base in expected {
      let delay = ADSClientConfiguration.Backoff.Delays.seconds(delays.next())
      #expect(delay >= base * 0.8 - 1e-6 && delay <= base * 1.2 + 1e-6)
    }
    delays.reset()
    #expect(ADSClientConfiguration.Backoff.Delays.seconds(delays.next()) <= 1.2 + 1e-6)
    #expect(
      ADSClientConfiguration.Backoff.grpcDefault
        == .init(initial: .seconds(1), multiplier: 1.6, jitter: 0.2, max: .seconds(120)))
  }
}
