import EnvoyAPI
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@testable import XDSClient

/// A subscriber that records every update and connection change, answers with `verdict`, and may change
/// subscriptions from inside an apply (as the proxy's CDS apply subscribes EDS).
final class RecordingSubscriber: ADSSubscriber {
  struct State {
    var updates: [XDSUpdate] = []
    var connections: [Bool] = []
    var client: ADSClient?
  }

  let state = Mutex(State())
  let verdict: @Sendable (XDSUpdate, ADSClient?) -> String?

  init(verdict: @escaping @Sendable (XDSUpdate, ADSClient?) -> String? = { _, _ in nil }) {
    self.verdict = verdict
  }

  func apply(_ update: XDSUpdate) async -> String? {
    let client = state.withLock { state in
      state.updates.append(update)
      return state.client
    }
    return verdict(update, client)
  }

  func connectionStateChanged(connected: Bool) async {
    state.withLock { $0.connections.append(connected) }
  }

  var updates: [XDSUpdate] { state.withLock { $0.updates } }
  var connections: [Bool] { state.withLock { $0.connections } }

  /// Waits (bounded) for an update satisfying `predicate`.
  func update(
    _ what: String, timeout: Duration = .seconds(20), where predicate: (XDSUpdate) -> Bool
  ) async throws -> XDSUpdate {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      if let found = updates.last(where: predicate) { return found }
      try await Task.sleep(for: .milliseconds(10))
    }
    throw XDSControlPlaneProcess.Failure(description: "no update: \(what); got \(updates.map(\.versionInfo))")
  }

  func waitForConnections(_ expected: [Bool], timeout: Duration = .seconds(20)) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      if connections == expected { return }
      try await Task.sleep(for: .milliseconds(10))
    }
    throw XDSControlPlaneProcess.Failure(description: "connections \(connections), expected \(expected)")
  }
}

/// An ``ADSClient`` running against the Python control plane over a Unix socket.
struct ClientUnderTest {
  let plane: XDSControlPlaneProcess
  let client: ADSClient
  let subscriber: RecordingSubscriber
  let task: Task<Void, any Error>

  static let nodeID = "sidecar~10.0.0.1~app.shop~shop.svc.cluster.local"

  /// Starts the control plane with `prepare`'s snapshots, then a client subscribed per `subscriptions`.
  static func start(
    _ api: ADSClientConfiguration.API, subscriptions: [(String, XDSSubscription)],
    subscriber: RecordingSubscriber = RecordingSubscriber(),
    prepare: (XDSControlPlaneProcess) async throws -> Void = { _ in }
  ) async throws -> ClientUnderTest {
    let plane = try await XDSControlPlaneProcess.start()
    try await prepare(plane)
    var node = Envoy_Config_Core_V3_Node()
    node.id = nodeID
    let configuration = ADSClientConfiguration(
      api: api, target: .unix(path: plane.socketPath), node: node, setNodeOnFirstMessageOnly: true,
      backoff: .init(initial: .milliseconds(50), multiplier: 1.6, jitter: 0.2, max: .milliseconds(500)))
    var logger = Logger(label: "xds-client-test")
    logger.logLevel = .debug
    let client = ADSClient(configuration: configuration, subscriber: subscriber, logger: logger)
    subscriber.state.withLock { $0.client = client }
    for (type, subscription) in subscriptions { client.setSubscription(type, subscription) }
    let task = Task { try await client.run() }
    return ClientUnderTest(plane: plane, client: client, subscriber: subscriber, task: task)
  }

  func stop() async {
    task.cancel()
    _ = try? await task.value
    plane.stop()
  }
}

let clusterA = #"{"name":"a","connect_timeout":"1s"}"#
let clusterB = #"{"name":"b","connect_timeout":"1s"}"#
let clusterBad = #"{"name":"bad","connect_timeout":"1s"}"#

extension XDSControlPlaneProcess.Event {
  var isNACK: Bool { errorDetail != nil }
}

@Suite(
  "ADS client against a grpcio control plane over a Unix socket", .timeLimit(.minutes(5)),
  .enabled(if: XDSControlPlaneProcess.shouldRun, "\(XDSControlPlaneProcess.missing)"))
struct ADSClientIntegrationTests {
  static let apis: [ADSClientConfiguration.API] = [.stateOfTheWorld, .delta]

  @Test("CDS wildcard: clusters arrive; the server sees the subscription, then the ACK", arguments: apis)
  func wildcardCDS(api: ADSClientConfiguration.API) async throws {
    let harness = try await ClientUnderTest.start(api, subscriptions: [(cds, .wildcard)]) { plane in
      try await plane.set(cds, version: "v1", resources: [clusterA, clusterB])
    }
    do {
      let plane = harness.plane
      let subscribe = try await plane.nextRequest("CDS subscription") { $0.typeURL == cds }
      #expect(subscribe.nodeID == ClientUnderTest.nodeID)
      #expect(subscribe.responseNonce == "" && subscribe.versionInfo == "" && !subscribe.isNACK)
      if api == .delta {
        #expect(subscribe.subscribe == ["*"] && subscribe.initialResourceVersions == [:])
      } else {
        #expect(subscribe.resourceNames == [])
      }
      let push = try await plane.next("CDS push") { $0.isResponse && $0.typeURL == cds }
      let ack = try await plane.nextRequest("CDS ACK") { $0.typeURL == cds }
      #expect(ack.responseNonce == push.nonce && !ack.isNACK)
      #expect(ack.nodeID == "")  // node on the stream's first message only
      if api == .stateOfTheWorld { #expect(ack.versionInfo == "v1") }
      let update = try await harness.subscriber.update("v1") { $0.versionInfo == "v1" }
      #expect(update.resources.map(\.name).sorted() == ["a", "b"])
      #expect(update.stateOfTheWorld == (api == .stateOfTheWorld))
      try await harness.subscriber.waitForConnections([true])

      // A later push: b is gone.
      try await plane.set(cds, version: "v2", resources: [clusterA])
      let second = try await plane.next("CDS push v2") { $0.isResponse && $0.typeURL == cds }
      let ack2 = try await plane.nextRequest("CDS ACK v2") { $0.typeURL == cds }
      #expect(ack2.responseNonce == second.nonce && !ack2.isNACK)
      if api == .stateOfTheWorld { #expect(ack2.versionInfo == "v2") }
      let removal = try await harness.subscriber.update("v2") { $0.versionInfo == "v2" }
      #expect(removal.removed == ["b"])
    } catch {
      await harness.stop()
      throw error
    }
    await harness.stop()
  }

  @Test("a resource the subscriber rejects: NACK with its message and the previous version", arguments: apis)
  func subscriberNACK(api: ADSClientConfiguration.API) async throws {
    let subscriber = RecordingSubscriber { update, _ in
      update.resources.contains { $0.name == "bad" } ? "clusters[bad].connect_timeout: not allowed" : nil
    }
    let harness = try await ClientUnderTest.start(
      api, subscriptions: [(cds, .wildcard)], subscriber: subscriber
    ) {
      try await $0.set(cds, version: "v1", resources: [clusterA])
    }
    do {
      let plane = harness.plane
      try await plane.nextRequest("CDS ACK v1") { $0.typeURL == cds && !$0.responseNonce.isNilOrEmpty }
      try await plane.set(cds, version: "v2", resources: [clusterA, clusterBad])
      let push = try await plane.next("CDS push v2") { $0.isResponse && $0.version == "v2" }
      let nack = try await plane.nextRequest("CDS NACK") {
        $0.typeURL == cds && $0.responseNonce == push.nonce
      }
      #expect(nack.errorDetail == .init(code: 13, message: "clusters[bad].connect_timeout: not allowed"))
      if api == .stateOfTheWorld { #expect(nack.versionInfo == "v1") }

      // Fixed: accepted again.
      try await plane.set(cds, version: "v3", resources: [clusterA])
      let fixed = try await plane.next("CDS push v3") { $0.isResponse && $0.version == "v3" }
      let ack = try await plane.nextRequest("CDS ACK v3") {
        $0.typeURL == cds && $0.responseNonce == fixed.nonce
      }
      #expect(!ack.isNACK)
      if api == .stateOfTheWorld { #expect(ack.versionInfo == "v3") }
    } catch {
      await harness.stop()
      throw error
    }
    await harness.stop()
  }

  @Test("invalid responses are NACKed before the subscriber: duplicate name, wrong type", arguments: apis)
  func clientSideValidation(api: ADSClientConfiguration.API) async throws {
    let harness = try await ClientUnderTest.start(api, subscriptions: [(cds, .wildcard)]) {
      try await $0.set(cds, version: "v1", resources: [clusterA])
    }
    do {
      let plane = harness.plane
      try await plane.nextRequest("CDS ACK v1") { $0.typeURL == cds && !$0.responseNonce.isNilOrEmpty }
      let a = #"{"@type":"\#(cds)","name":"a"}"#
      let listener = #"{"@type":"\#(lds)","name":"l"}"#
      if api == .delta {
        try await plane.raw(
          #"{"type_url":"\#(cds)","nonce":"dup","resources":[{"name":"a","version":"9","resource":\#(a)},"#
            + #"{"name":"a","version":"9","resource":\#(a)}]}"#, delta: true)
        try await plane.raw(
          #"{"type_url":"\#(cds)","nonce":"type","resources":[{"name":"l","version":"9","resource":\#(listener)}]}"#,
          delta: true)
      } else {
        try await plane.raw(
          #"{"type_url":"\#(cds)","version_info":"v9","nonce":"dup","resources":[\#(a),\#(a)]}"#, delta: false
        )
        try await plane.raw(
          #"{"type_url":"\#(cds)","version_info":"v9","nonce":"type","resources":[\#(listener)]}"#,
          delta: false)
      }
      let duplicate = try await plane.nextRequest("NACK of the duplicate") { $0.responseNonce == "dup" }
      #expect(duplicate.errorDetail?.message == "resources[1]: duplicate resource name 'a'")
      let wrongType = try await plane.nextRequest("NACK of the wrong type") { $0.responseNonce == "type" }
      #expect(wrongType.errorDetail?.message.hasPrefix("resources[0]") == true)
      if api == .stateOfTheWorld { #expect([duplicate.versionInfo, wrongType.versionInfo] == ["v1", "v1"]) }
      #expect(harness.subscriber.updates.count == 1)
    } catch {
      await harness.stop()
      throw error
    }
    await harness.stop()
  }

  @Test("EDS subscribed by name from the CDS apply: requested before the CDS ACK", arguments: apis)
  func edsAfterCDS(api: ADSClientConfiguration.API) async throws {
    let subscriber = RecordingSubscriber { update, client in
      if update.typeURL == cds {
        client?.setSubscription(eds, .names(Set(update.resources.map(\.name))))
      }
      return nil
    }
    let harness = try await ClientUnderTest.start(
      api, subscriptions: [(cds, .wildcard)], subscriber: subscriber
    ) {
      try await $0.set(cds, version: "v1", resources: [clusterA, clusterB])
      try await $0.set(
        eds, version: "e1",
        resources: [#"{"cluster_name":"a"}"#, #"{"cluster_name":"b"}"#, #"{"cluster_name":"c"}"#])
    }
    do {
      let plane = harness.plane
      let push = try await plane.next("CDS push") { $0.isResponse && $0.typeURL == cds }
      let edsRequest = try await plane.nextRequest("EDS subscription") { $0.typeURL == eds }
      if api == .delta {
        #expect(edsRequest.subscribe == ["a", "b"])
      } else {
        #expect(edsRequest.resourceNames == ["a", "b"] && edsRequest.versionInfo == "")
      }
      try await plane.nextRequest("CDS ACK after the EDS request") {
        $0.typeURL == cds && $0.responseNonce == push.nonce
      }
      let endpoints = try await harness.subscriber.update("EDS") { $0.typeURL == eds }
      #expect(endpoints.resources.map(\.name).sorted() == ["a", "b"])
      try await plane.nextRequest("EDS ACK") {
        $0.typeURL == eds && !$0.responseNonce.isNilOrEmpty && !$0.isNACK
      }
    } catch {
      await harness.stop()
      throw error
    }
    await harness.stop()
  }

  @Test(
    "the control plane ends the stream: the client reconnects and resumes with its versions", arguments: apis)
  func reconnect(api: ADSClientConfiguration.API) async throws {
    let harness = try await ClientUnderTest.start(
      api, subscriptions: [(cds, .wildcard), (eds, .names(["a"]))]
    ) {
      try await $0.set(cds, version: "v1", resources: [clusterA, clusterB])
      try await $0.set(eds, version: "e1", resources: [#"{"cluster_name":"a"}"#])
    }
    do {
      let plane = harness.plane
      try await plane.nextRequest("CDS ACK") { $0.typeURL == cds && !$0.responseNonce.isNilOrEmpty }
      try await plane.nextRequest("EDS ACK") { $0.typeURL == eds && !$0.responseNonce.isNilOrEmpty }
      try await harness.subscriber.waitForConnections([true])
      try await plane.closeStreams(code: 14)
      let again = try await plane.nextRequest("CDS on the new stream") { $0.typeURL == cds && $0.stream == 2 }
      let edsAgain = try await plane.nextRequest("EDS on the new stream") {
        $0.typeURL == eds && $0.stream == 2
      }
      #expect(again.nodeID == ClientUnderTest.nodeID && edsAgain.nodeID == "")
      #expect(again.responseNonce == "" && edsAgain.responseNonce == "")
      if api == .delta {
        #expect(again.subscribe == ["*"] && again.initialResourceVersions == ["a": "v1", "b": "v1"])
        #expect(edsAgain.subscribe == ["a"] && edsAgain.initialResourceVersions == ["a": "e1"])
      } else {
        #expect(again.versionInfo == "v1" && again.resourceNames == [])
        #expect(edsAgain.versionInfo == "e1" && edsAgain.resourceNames == ["a"])
      }
      // The stream works: a new push is applied.
      try await plane.set(cds, version: "v2", resources: [clusterA])
      let update = try await harness.subscriber.update("v2 after the reconnect") { $0.versionInfo == "v2" }
      #expect(update.removed == ["b"])
      // Connected again once the new stream's first response arrived.
      try await harness.subscriber.waitForConnections([true, false, true])
    } catch {
      await harness.stop()
      throw error
    }
    await harness.stop()
  }

  @Test("unsubscription: names dropped, then everything of the type", arguments: apis)
  func unsubscription(api: ADSClientConfiguration.API) async throws {
    let harness = try await ClientUnderTest.start(api, subscriptions: [(eds, .names(["a", "b"]))]) {
      try await $0.set(eds, version: "e1", resources: [#"{"cluster_name":"a"}"#, #"{"cluster_name":"b"}"#])
    }
    do {
      let plane = harness.plane
      try await plane.nextRequest("EDS ACK") { $0.typeURL == eds && !$0.responseNonce.isNilOrEmpty }
      harness.client.setSubscription(eds, .names(["a"]))
      let narrower = try await plane.nextRequest("EDS narrowed") { $0.typeURL == eds }
      harness.client.setSubscription(eds, .names([]))
      let none = try await plane.nextRequest("EDS dropped") { $0.typeURL == eds && $0.resourceNames != ["a"] }
      if api == .delta {
        #expect(narrower.unsubscribe == ["b"] && narrower.subscribe == [])
        #expect(none.unsubscribe == ["a"] && none.subscribe == [])
      } else {
        #expect(narrower.resourceNames == ["a"] && narrower.versionInfo == "e1")
        #expect(none.resourceNames == [] && none.versionInfo == "e1")
      }
    } catch {
      await harness.stop()
      throw error
    }
    await harness.stop()
  }
}

@Suite(
  "ADS client lifecycle", .timeLimit(.minutes(5)),
  .enabled(if: XDSControlPlaneProcess.shouldRun, "\(XDSControlPlaneProcess.missing)"))
struct ADSClientLifecycleTests {
  @Test("no control plane yet: retried with backoff until one listens; graceful shutdown ends run()")
  func lateControlPlaneAndShutdown() async throws {
    let directory = "/tmp/xcl-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let socketPath = directory + "/ads.sock"
    var node = Envoy_Config_Core_V3_Node()
    node.id = ClientUnderTest.nodeID
    let subscriber = RecordingSubscriber()
    let client = ADSClient(
      configuration: ADSClientConfiguration(
        api: .delta, target: .unix(path: socketPath), node: node,
        backoff: .init(initial: .milliseconds(20), multiplier: 2, jitter: 0.2, max: .milliseconds(200))),
      subscriber: subscriber, logger: Logger(label: "xds-client-test"))
    client.setSubscription(cds, .wildcard)
    let group = ServiceGroup(services: [client], logger: Logger(label: "xds-client-test"))
    let run = Task { try await group.run() }
    // A few failed attempts first.
    try await Task.sleep(for: .milliseconds(300))
    let plane = try await XDSControlPlaneProcess.start(socketPath: socketPath)
    defer { plane.stop() }
    try await plane.set(cds, version: "v1", resources: [clusterA])
    let subscribe = try await plane.nextRequest("CDS subscription once listening") { $0.typeURL == cds }
    #expect(subscribe.subscribe == ["*"] && subscribe.nodeID == ClientUnderTest.nodeID)
    _ = try await subscriber.update("v1") { $0.versionInfo == "v1" }

    await group.triggerGracefulShutdown()
    try await run.value
    try await plane.next("stream closed by the client") { $0.event == "stream_closed" }
    try await subscriber.waitForConnections([true, false])
  }
}

extension Optional where Wrapped == String {
  var isNilOrEmpty: Bool { self?.isEmpty ?? true }
}
