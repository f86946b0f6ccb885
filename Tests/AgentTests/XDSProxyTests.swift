import Foundation
import Logging
import ServiceLifecycle
import TestSupport
import Testing

@testable import Agent

/// The agent's xDS proxy between a grpcio ADS client (standing in for Envoy, over the Unix socket) and a
/// fake control plane: messages relayed both ways, token and cluster ID added upstream, late upstreams
/// waited for, upstream failures passed down.
@Suite("xDS proxy")
struct XDSProxyTests {
  static let clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

  final class ProxyUnderTest: Sendable {
    let directory: String
    let socketPath: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(upstreamPort: Int, limits: XDSProxy.Limits = .init()) async throws {
      directory = "/tmp/pf-xds-" + UUID().uuidString.prefix(8)
      socketPath = directory + "/XDS"
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      try Data("pod-token\n".utf8).write(to: URL(fileURLWithPath: directory + "/istio-token"))
      let upstream = IstiodConnection(
        host: "127.0.0.1", port: upstreamPort, plaintext: true, rootCertificatePath: "", serverName: "istiod",
        tokenPath: directory + "/istio-token", clusterID: "east", extraHeaders: [:])
      let logger = Logger(label: "xds-test")
      let proxy = XDSProxy(
        socketPath: socketPath, owner: nil, upstream: upstream, limits: limits, logger: logger)
      let group = ServiceGroup(services: [proxy], logger: logger)
      self.group = group
      task = Task { try await group.run() }
      let socket = socketPath
      #expect(await eventually { FileManager.default.fileExists(atPath: socket) })
    }

    /// Runs the ADS client to completion on its own thread.
    func client(
      type: String = XDSProxyTests.clusterType, delta: Bool = false, responses: Int = 1, timeout: Int = 20,
      padBytes: Int = 0, flood: Int = 0
    ) async throws -> (status: Int32, output: String, responses: [[String: String]]) {
      let out = directory + "/client-" + UUID().uuidString.prefix(6)
      try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
      var arguments = [
        "python3", Binaries.helper("ads_client.py"), "--socket", socketPath, "--type", type, "--responses",
        "\(responses)", "--out", out, "--timeout", "\(timeout)",
      ]
      if delta { arguments.append("--delta") }
      if padBytes > 0 { arguments += ["--pad-bytes", "\(padBytes)"] }
      if flood > 0 { arguments += ["--flood", "\(flood)"] }
      let result = try await onThread { try Binaries.run("/usr/bin/env", arguments) }
      return (result.status, result.output, try readResponses([String: String].self, in: out))
    }

    func stop() async {
      await group.triggerGracefulShutdown()
      _ = try? await task.value
      try? FileManager.default.removeItem(atPath: directory)
    }
  }

  @Test func stateOfTheWorldIsRelayedWithTokenAndClusterID() async throws {
    let upstream = try await FakeControlPlane()
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port)
    let result = try await proxy.client()
    #expect(result.status == 0, "\(result.output)")
    #expect(result.responses.first == ["type_url": Self.clusterType, "version": "v1", "nonce": "n1"])
    // The subscription and Envoy's ACK both reached the control plane, in order.
    #expect(await eventually { upstream.requests.count >= 2 })
    let requests = upstream.requests
    #expect(requests.first?.nodeID == "sidecar~10.0.0.1~app.shop~shop.svc.cluster.local")
    #expect(requests.first?.responseNonce == "")
    #expect(requests.dropFirst().first?.versionInfo == "v1")
    #expect(requests.dropFirst().first?.responseNonce == "n1")
    let metadata = try #require(upstream.metadata[1])
    #expect(metadata["authorization"] == "Bearer pod-token")
    #expect(metadata["clusterid"] == "east")
    await proxy.stop()
    await upstream.stop()
  }

  @Test func deltaIsRelayed() async throws {
    let upstream = try await FakeControlPlane()
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port)
    let result = try await proxy.client(delta: true)
    #expect(result.status == 0, "\(result.output)")
    #expect(result.responses.first?["nonce"] == "d1")
    #expect(await eventually { upstream.requests.filter(\.delta).count >= 2 })
    #expect(upstream.requests.filter(\.delta).last?.responseNonce == "d1")
    await proxy.stop()
    await upstream.stop()
  }

  @Test func aLateUpstreamIsWaitedFor() async throws {
    let port = freePort()
    let proxy = try await ProxyUnderTest(upstreamPort: port)
    let client = Task { try await proxy.client() }
    try await Task.sleep(for: .seconds(1))
    let upstream = try await FakeControlPlane(port: port)
    let result = try await client.value
    #expect(result.status == 0, "\(result.output)")
    #expect(result.responses.first?["nonce"] == "n1")
    await proxy.stop()
    await upstream.stop()
  }

  @Test func anUpstreamFailureEndsTheDownstreamStream() async throws {
    let upstream = try await FakeControlPlane()
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port)
    let client = Task { try await proxy.client(responses: 5) }
    // The Python client starts slowly on a loaded two-core machine (it failed once at 15 s in a full run).
    #expect(await eventually(timeout: .seconds(45)) { upstream.requests.count >= 2 })
    upstream.endStreams(.unavailable)
    let result = try await client.value
    #expect(result.status == 3)
    #expect(result.output.contains("UNAVAILABLE: closed by the fake control plane"), "\(result.output)")
    await proxy.stop()
    await upstream.stop()
  }

  @Test func anUpstreamRejectionReachesTheDownstream() async throws {
    let upstream = try await FakeControlPlane()
    upstream.rejectStreams(.permissionDenied)
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port)
    let result = try await proxy.client()
    #expect(result.status == 3)
    #expect(result.output.contains("PERMISSION_DENIED: rejected by the fake"), "\(result.output)")
    await proxy.stop()
    await upstream.stop()
  }

  /// A request over the relay's explicit limit (1 MiB here; the 4 MiB default of gRPC would let this 2 MiB one
  /// through) ends that stream (the transport resets it: RST_STREAM, seen as CANCELLED by grpcio) and never
  /// reaches istiod; the relay keeps serving.
  @Test func anOverLimitRequestIsRefusedAndTheRelayKeepsServing() async throws {
    let upstream = try await FakeControlPlane()
    var limits = XDSProxy.Limits()
    limits.maxRequestBytes = 1024 * 1024
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port, limits: limits)
    let big = try await proxy.client(padBytes: 2 * 1024 * 1024)
    #expect(big.status == 3, "\(big.output)")
    #expect(big.output.contains("RESOURCE_EXHAUSTED") || big.output.contains("RST_STREAM"), "\(big.output)")
    #expect(!upstream.requests.contains { $0.resourceNames.contains { $0.count > 1024 } })
    let small = try await proxy.client()
    #expect(small.status == 0, "\(small.output)")
    #expect(small.responses.first?["nonce"] == "n1")
    await proxy.stop()
    await upstream.stop()
  }

  /// A push over the relay's response limit (64 KiB here, 64 MiB by default; grpcio and gRPC's own default
  /// would take this 256 KiB one) is not relayed: the proxy's stream ends with RESOURCE_EXHAUSTED, for state
  /// of the world and delta, and the relay keeps serving pushes under the limit.
  @Test(arguments: [false, true])
  func anOverLimitPushIsNotRelayed(delta: Bool) async throws {
    let upstream = try await FakeControlPlane()
    upstream.padResponses(256 * 1024)
    var limits = XDSProxy.Limits()
    limits.maxResponseBytes = 64 * 1024
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port, limits: limits)
    let big = try await proxy.client(delta: delta)
    #expect(big.status == 3, "\(big.output)")
    #expect(big.output.contains("RESOURCE_EXHAUSTED"), "\(big.output)")
    #expect(big.responses.isEmpty)
    upstream.padResponses(16 * 1024)
    let small = try await proxy.client(delta: delta)
    #expect(small.status == 0, "\(small.output)")
    #expect(small.responses.first?["nonce"] == (delta ? "d1" : "n1"))
    await proxy.stop()
    await upstream.stop()
  }

  /// While istiod cannot be reached the relay holds the proxy's requests; past
  /// ``XDSProxy/Limits/maxBufferedRequests`` (8 here) the stream ends at once with RESOURCE_EXHAUSTED rather
  /// than buffering more (or waiting for istiod to say so), and a later stream is relayed once istiod is up.
  @Test func requestsBeyondTheBufferEndTheStreamWhileIstiodIsAway() async throws {
    let port = freePort()
    var limits = XDSProxy.Limits()
    limits.maxBufferedRequests = 8
    let proxy = try await ProxyUnderTest(upstreamPort: port, limits: limits)
    let flooded = try await proxy.client(timeout: 30, flood: 100)
    #expect(flooded.status == 3, "\(flooded.output)")
    #expect(
      flooded.output.contains("RESOURCE_EXHAUSTED: more than 8 requests are waiting for istiod"),
      "\(flooded.output)")
    let upstream = try await FakeControlPlane(port: port)
    let result = try await proxy.client()
    #expect(result.status == 0, "\(result.output)")
    #expect(result.responses.first?["nonce"] == "n1")
    #expect(!upstream.requests.contains { $0.responseNonce.hasPrefix("flood-") })
    await proxy.stop()
    await upstream.stop()
  }

  @Test func defaultLimitsAreExplicit() {
    let limits = XDSProxy.Limits()
    #expect(limits.maxRequestBytes == 4 * 1024 * 1024)
    #expect(limits.maxResponseBytes == 64 * 1024 * 1024)
    #expect(limits.maxBufferedRequests == 64)
  }

  @Test func eachDownstreamStreamGetsItsOwnUpstreamStream() async throws {
    let upstream = try await FakeControlPlane()
    let proxy = try await ProxyUnderTest(upstreamPort: upstream.port)
    async let first = proxy.client()
    async let second = proxy.client(type: "type.googleapis.com/envoy.config.listener.v3.Listener")
    let results = try await [first, second]
    #expect(results.allSatisfy { $0.status == 0 }, "\(results.map(\.output))")
    #expect(upstream.metadata.count == 2)
    #expect(Set(upstream.requests.map(\.stream)).count == 2)
    await proxy.stop()
    await upstream.stop()
  }
}
