/// One SDS stream's xDS bookkeeping (Istio's `ShouldRespond`): which names the proxy watches and which
/// request deserves a response. Pure: the service feeds it requests and pushes and acts on the result.
///
/// - A request with an empty response nonce opens (or re-opens) a watch: respond with every name asked.
/// - A nonce other than the last one sent is stale: ignore it.
/// - A request carrying `error_detail` is a NACK: log it, change nothing.
/// - Otherwise it is an ACK: names newly added get a response with just those names; the same names, or
///   fewer (an unsubscribe), need no response.
/// - A pushed change is sent only if the stream watches that name.
struct SDSStreamStateMachine {
  enum RequestAction: Equatable {
    case respond([String])
    case acknowledge
    case ignoreStale(nonce: String)
    case nack(message: String)
  }

  private(set) var watched: [String] = []
  private var lastNonce: String?

  mutating func received(
    resourceNames: [String], responseNonce: String, errorMessage: String?
  ) -> RequestAction {
    let names = Self.unique(resourceNames)
    if responseNonce.isEmpty {
      if let errorMessage { return .nack(message: errorMessage) }
      watched = names
      return names.isEmpty ? .acknowledge : .respond(names)
    }
    guard responseNonce == lastNonce else { return .ignoreStale(nonce: responseNonce) }
    if let errorMessage { return .nack(message: errorMessage) }
    let added = names.filter { !watched.contains($0) }
    watched = names
    return added.isEmpty ? .acknowledge : .respond(added)
  }

  func watches(_ name: String) -> Bool { watched.contains(name) }

  mutating func sent(nonce: String) { lastNonce = nonce }

  private static func unique(_ names: [String]) -> [String] {
    var seen = Set<String>()
    return names.filter { seen.insert($0).inserted }
  }
}
