/// One connection attempt the validator makes: who dials (uid/gid and an optional source address),
/// what it dials, and which validator listener must accept the connection.
///
/// The client socket is created with `uid`/`gid` as its fsuid/fsgid, which is what iptables
/// `-m owner` and nft `meta skuid`/`meta skgid` match on.
package struct CaptureProbe: Sendable, Equatable, CustomStringConvertible {
  package var family: IPFamily
  /// IP literal the client socket is bound to before connecting; nil lets the kernel choose.
  package var source: String?
  /// IP literal the client dials, e.g. `127.0.0.6`, `10.1.2.3` or `fd00::2`.
  package var destination: String
  package var port: UInt16
  /// fsuid of the thread that creates the client socket.
  package var uid: UInt32
  /// fsgid of the thread that creates the client socket.
  package var gid: UInt32
  /// The listener the rules must deliver the connection to: 15006 for inbound, 15001 for outbound.
  package var expectedListenerPort: UInt16
  /// What the probe stands for in reports: "inbound IPv4", "outbound IPv6", ...
  package var label: String

  package init(
    family: IPFamily,
    source: String? = nil,
    destination: String,
    port: UInt16,
    uid: UInt32,
    gid: UInt32,
    expectedListenerPort: UInt16,
    label: String
  ) {
    self.family = family
    self.source = source
    self.destination = destination
    self.port = port
    self.uid = uid
    self.gid = gid
    self.expectedListenerPort = expectedListenerPort
    self.label = label
  }

  /// `destination:port`, with IPv6 literals in brackets.
  package var destinationEndpoint: String {
    family == .v6 ? "[\(destination)]:\(port)" : "\(destination):\(port)"
  }

  package var description: String {
    let from = source.map { " from \($0)" } ?? ""
    return "\(label): uid \(uid) gid \(gid)\(from) to \(destinationEndpoint), "
      + "expecting listener \(expectedListenerPort)"
  }
}

/// What happened to one `CaptureProbe`: where the connection landed, the original destination the
/// listener read with SO_ORIGINAL_DST, and why it failed if it did.
package struct CaptureProbeResult: Sendable, Equatable {
  package var probe: CaptureProbe
  /// The validator listener that accepted the connection, if one did.
  package var landedOnPort: UInt16?
  /// `ip:port` (`[ip]:port` for IPv6) as read by the listener with SO_ORIGINAL_DST.
  package var originalDestination: String?
  /// nil on success; otherwise an operator-facing reason.
  package var failure: String?

  package init(
    probe: CaptureProbe,
    landedOnPort: UInt16? = nil,
    originalDestination: String? = nil,
    failure: String? = nil
  ) {
    self.probe = probe
    self.landedOnPort = landedOnPort
    self.originalDestination = originalDestination
    self.failure = failure
  }

  package var succeeded: Bool { failure == nil }
}
