internal import EnvoyAPI
internal import Foundation
internal import GRPCCore
internal import Logging
internal import SwiftProtobuf
internal import Synchronization

/// `envoy.service.secret.v3.SecretDiscoveryService` over the agent's ``SecretCache``: StreamSecrets with
/// xDS ACK/NACK semantics and pushes on rotation, FetchSecrets for one-shot reads. Delta SDS is not served
/// (Istio's agent does not serve it either; Envoy uses StreamSecrets).
struct SecretDiscoveryService: Envoy_Service_Secret_V3_SecretDiscoveryService.SimpleServiceProtocol {
  let cache: SecretCache
  let logger: Logger
  private let versions = VersionCounter()

  init(cache: SecretCache, logger: Logger) {
    self.cache = cache
    self.logger = logger
  }

  private enum Event: Sendable {
    case request(Envoy_Service_Discovery_V3_DiscoveryRequest)
    case changed(SecretName)
    case requestsEnded
    case requestsFailed(any Error)
  }

  func streamSecrets(
    request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DiscoveryRequest, any Error>,
    response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
    context: ServerContext
  ) async throws {
    let (events, sink) = AsyncStream<Event>.makeStream()
    let (subscription, changes) = await cache.subscribe()
    var logger = self.logger
    logger[metadataKey: "agent.sds.stream"] = "\(subscription)"
    defer { sink.finish() }
    do {
      try await serve(request: request, response: response, events: events, sink: sink, changes: changes, subscription: subscription, logger: &logger)
    } catch {
      await cache.unsubscribe(subscription)
      logger.info("SDS stream closed", metadata: ["error": "\(error)"])
      throw error
    }
    await cache.unsubscribe(subscription)
    logger.info("SDS stream closed")
  }

  private func serve(
    request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DiscoveryRequest, any Error>,
    response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
    events: AsyncStream<Event>, sink: AsyncStream<Event>.Continuation, changes: AsyncStream<SecretName>,
    subscription: Int, logger: inout Logger
  ) async throws {
    try await withThrowingDiscardingTaskGroup { group in
      group.addTask {
        do {
          for try await message in request { sink.yield(.request(message)) }
          sink.yield(.requestsEnded)
        } catch {
          sink.yield(.requestsFailed(error))
        }
      }
      group.addTask {
        for await name in changes { sink.yield(.changed(name)) }
      }
      defer { group.cancelAll() }
      var state = SDSStreamStateMachine()
      var nodeID = ""
      loop: for await event in events {
        switch event {
        case .request(let message):
          if nodeID.isEmpty, message.hasNode {
            nodeID = message.node.id
            logger[metadataKey: "agent.sds.node"] = "\(nodeID)"
            logger.info("SDS stream opened")
          }
          if !message.typeURL.isEmpty, message.typeURL != WorkloadSecret.typeURL {
            throw RPCError(
              code: .invalidArgument,
              message: "SDS serves \(WorkloadSecret.typeURL), not \(message.typeURL)")
          }
          let action = state.received(
            resourceNames: message.resourceNames, responseNonce: message.responseNonce,
            errorMessage: message.hasErrorDetail ? message.errorDetail.message : nil)
          await cache.watch(subscription, names: state.watched)
          switch action {
          case .respond(let names):
            try await send(names, on: response, state: &state, logger: logger)
          case .acknowledge:
            logger.debug("SDS ACK", metadata: ["agent.sds.version": "\(message.versionInfo)"])
          case .ignoreStale(let nonce):
            logger.debug("SDS request with a stale nonce ignored", metadata: ["agent.sds.nonce": "\(nonce)"])
          case .nack(let text):
            logger.warning(
              "the proxy rejected a secret (NACK)",
              metadata: [
                "agent.sds.resources": "\(message.resourceNames)", "agent.sds.version": "\(message.versionInfo)",
                "error": "\(text)",
              ])
          }
        case .changed(let name):
          guard state.watches(name.description) else { continue }
          logger.info("pushing a changed secret", metadata: ["agent.sds.resource": "\(name)"])
          try await send([name.description], on: response, state: &state, logger: logger)
        case .requestsEnded:
          break loop
        case .requestsFailed(let error):
          logger.debug("SDS stream ended", metadata: ["error": "\(error)"])
          break loop
        }
      }
    }
  }

  func deltaSecrets(
    request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
    response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>,
    context: ServerContext
  ) async throws {
    throw RPCError(
      code: .unimplemented, message: "delta SDS is not served by the Pilotfish agent; use StreamSecrets")
  }

  func fetchSecrets(
    request: Envoy_Service_Discovery_V3_DiscoveryRequest, context: ServerContext
  ) async throws -> Envoy_Service_Discovery_V3_DiscoveryResponse {
    guard !request.resourceNames.isEmpty else {
      throw RPCError(code: .invalidArgument, message: "FetchSecrets: resource_names is empty")
    }
    var resources: [Google_Protobuf_Any] = []
    for name in request.resourceNames {
      guard let parsed = SecretName(name) else {
        throw RPCError(code: .notFound, message: "FetchSecrets: unknown secret name \"\(name)\"")
      }
      do {
        resources.append(try Google_Protobuf_Any(message: try await cache.secret(parsed).envoySecret(name: name)))
      } catch let error as AgentError {
        await cache.evictUnwatched()
        throw RPCError(code: .unavailable, message: "FetchSecrets \(name): \(error)")
      }
    }
    // A one-shot read keeps nothing cached that no stream watches.
    await cache.evictUnwatched()
    return makeResponse(resources)
  }

  /// Sends one response with the secrets in `names` that can be generated; the others are logged (and
  /// pushed later if they become available).
  private func send(
    _ names: [String], on response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
    state: inout SDSStreamStateMachine, logger: Logger
  ) async throws {
    var resources: [Google_Protobuf_Any] = []
    for name in names {
      guard let parsed = SecretName(name) else {
        logger.warning(
          "the proxy asked for a secret name the agent does not serve",
          metadata: ["agent.sds.resource": "\(name)"])
        continue
      }
      do {
        resources.append(try Google_Protobuf_Any(message: try await cache.secret(parsed).envoySecret(name: name)))
      } catch {
        logger.error(
          "cannot generate a secret; it is pushed once it can be",
          metadata: ["agent.sds.resource": "\(name)", "error": "\(error)"])
      }
    }
    guard !resources.isEmpty else { return }
    let message = makeResponse(resources)
    state.sent(nonce: message.nonce)
    try await response.write(message)
    logger.info(
      "SDS push", metadata: ["agent.sds.resources": "\(names)", "agent.sds.version": "\(message.versionInfo)"])
  }

  private func makeResponse(_ resources: [Google_Protobuf_Any]) -> Envoy_Service_Discovery_V3_DiscoveryResponse {
    var message = Envoy_Service_Discovery_V3_DiscoveryResponse()
    message.typeURL = WorkloadSecret.typeURL
    message.versionInfo = versions.next()
    message.nonce = UUID().uuidString.lowercased()
    message.resources = resources
    return message
  }
}

/// Istio's SDS version strings: `<RFC 3339 time>/<counter>`, increasing within the agent's life.
final class VersionCounter: Sendable {
  private let counter = Atomic<Int>(0)

  func next() -> String {
    let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
    return "\(Date().formatted(.iso8601))/\(value)"
  }
}
