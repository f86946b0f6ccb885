package import EnvoyAPI

/// How an ``ADSClient`` reaches its control plane and speaks to it.
package struct ADSClientConfiguration: Sendable {
  /// The ADS variant: `DeltaAggregatedResources` or `StreamAggregatedResources`.
  package enum API: Sendable, Hashable { case delta, stateOfTheWorld }

  /// Where the control plane listens.
  package enum Target: Sendable, Hashable {
    /// A Unix socket (the agent's xDS proxy at `./etc/istio/proxy/XDS`); plaintext.
    case unix(path: String)
    /// A host name or address and port; plaintext when `tls` is nil.
    case tcp(host: String, port: Int, tls: TLS?)
  }

  /// TLS to a TCP target. Files are PEM and read at each connection attempt.
  package struct TLS: Sendable, Hashable {
    /// The roots the server's certificate must chain to; nil: the system's.
    package var rootCertificatePath: String?
    /// The client certificate chain and its key (mutual TLS); both or neither.
    package var certificateChainPath: String?
    package var privateKeyPath: String?
    /// The name checked in the server's certificate and sent as SNI and `:authority`; nil: the host.
    package var serverName: String?

    package init(
      rootCertificatePath: String? = nil, certificateChainPath: String? = nil, privateKeyPath: String? = nil,
      serverName: String? = nil
    ) {
      self.rootCertificatePath = rootCertificatePath
      self.certificateChainPath = certificateChainPath
      self.privateKeyPath = privateKeyPath
      self.serverName = serverName
    }
  }

  /// Exponential backoff between stream attempts (and between the transport's connection attempts):
  /// gRPC's connection backoff by default.
  package struct Backoff: Sendable, Hashable {
    package var initial: Duration
    package var multiplier: Double
    /// Each delay is randomised by up to this fraction either way (0.2: 8 s to 12 s for 10 s).
    package var jitter: Double
    /// The longest delay before jitter.
    package var max: Duration

    package init(initial: Duration, multiplier: Double, jitter: Double, max: Duration) {
      self.initial = initial
      self.multiplier = multiplier
      self.jitter = jitter
      self.max = max
    }

    /// gRPC's: initial 1 s, multiplier 1.6, jitter 0.2, at most 120 s.
    package static let grpcDefault = Backoff(
      initial: .seconds(1), multiplier: 1.6, jitter: 0.2, max: .seconds(120))
  }

  package var api: API
  package var target: Target
  package var node: Envoy_Config_Core_V3_Node
  /// Envoy's `set_node_on_first_message_only`: the node goes on the stream's first request only (Istio's
  /// bootstrap sets it); otherwise on every request.
  package var setNodeOnFirstMessageOnly: Bool
  package var backoff: Backoff
  /// The largest response accepted: 64 MiB. A mesh-sized CDS push is tens of MiB.
  package var maxReceiveMessageBytes: Int

  package init(
    api: API, target: Target, node: Envoy_Config_Core_V3_Node, setNodeOnFirstMessageOnly: Bool = true,
    backoff: Backoff = .grpcDefault, maxReceiveMessageBytes: Int = 64 * 1024 * 1024
  ) {
    self.api = api
    self.target = target
    self.node = node
    self.setNodeOnFirstMessageOnly = setNodeOnFirstMessageOnly
    self.backoff = backoff
    self.maxReceiveMessageBytes = maxReceiveMessageBytes
  }
}

extension ADSClientConfiguration.Backoff {
  /// The successive delays of one run of failures; `reset()` after a stream that worked.
  struct Delays {
    let backoff: ADSClientConfiguration.Backoff
    private var current: Double

    init(_ backoff: ADSClientConfiguration.Backoff) {
      self.backoff = backoff
      current = Self.seconds(backoff.initial)
    }

    mutating func reset() { current = Self.seconds(backoff.initial) }

    /// The next delay: the current one (capped at the maximum) with jitter; then grows the current one.
    mutating func next<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Duration {
      let cap = Self.seconds(backoff.max)
      let base = Swift.min(current, cap)
      let jitter = backoff.jitter.isFinite ? Swift.min(Swift.max(backoff.jitter, 0), 1) : 0
      let factor = jitter > 0 ? Double.random(in: (1 - jitter)...(1 + jitter), using: &generator) : 1
      let multiplier = backoff.multiplier.isFinite ? Swift.max(backoff.multiplier, 1) : 1
      current = Swift.min(base * multiplier, cap)
      return .nanoseconds(Int64(Swift.min(Swift.max(base * factor, 0), 1e9) * 1e9))
    }

    mutating func next() -> Duration {
      var generator = SystemRandomNumberGenerator()
      return next(using: &generator)
    }

    /// Non-negative, finite seconds of `duration`.
    static func seconds(_ duration: Duration) -> Double {
      let (seconds, attoseconds) = duration.components
      let value = Double(seconds) + Double(attoseconds) / 1e18
      return value.isFinite ? Swift.max(value, 0) : 0
    }
  }
}
