internal import Logging
internal import ProxyCore
internal import Synchronization
internal import XDSClient

/// The proxy's side of the ADS stream: hands each update to `DynamicResources` (which validates and applies
/// it, or says why not: the NACK's message) and keeps the subscriptions in step with the config — EDS for
/// the clusters' service names after each cluster update, RDS for the listeners' route names after each
/// listener update. `control_plane.connected_state` follows the stream.
final class ADSConfigSubscriber: ADSSubscriber {
  private let dynamic: DynamicResources
  private let client = Mutex<ADSClient?>(nil)
  private let connected: Gauge
  private let logger: Logger

  init(dynamic: DynamicResources, stats: StatsStore, logger: Logger) {
    self.dynamic = dynamic
    self.connected = stats.gauge("control_plane.connected_state")
    self.logger = logger
  }

  /// The client whose subscriptions this subscriber keeps (set once, before the stream starts).
  func attach(_ client: ADSClient) { self.client.withLock { $0 = client } }

  func apply(_ update: XDSUpdate) async -> String? {
    guard let type = ResourceType(rawValue: update.typeURL) else {
      return "type \(update.typeURL) is not supported by this proxy"
    }
    let result = await dynamic.apply(
      ResourceUpdate(
        type: type, versionInfo: update.versionInfo,
        resources: update.resources.map {
          ResourceUpdate.Resource(name: $0.name, version: $0.version, resource: $0.resource)
        },
        removed: update.removed, stateOfTheWorld: update.stateOfTheWorld))
    let client = self.client.withLock { $0 }
    switch type {
    case .cluster:
      client?.setSubscription(XDSTypeURL.endpoint, .names(dynamic.neededEndpointNames))
    case .listener:
      client?.setSubscription(XDSTypeURL.route, .names(dynamic.neededRouteNames))
    case .endpoint, .route:
      break
    }
    return result
  }

  func connectionStateChanged(connected: Bool) async {
    self.connected.set(connected ? 1 : 0)
  }
}
