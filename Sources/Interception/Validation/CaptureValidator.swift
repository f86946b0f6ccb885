internal import Glibc
package import Logging
internal import NIOCore
internal import NIOPosix

/// Proves that installed rules deliver connections to the proxy's capture ports, the way Istio's
/// `--run-validation` does: it listens on the capture ports itself, dials each probe with the probe's
/// uid/gid, and checks which listener accepted the connection and what SO_ORIGINAL_DST says the
/// client dialled.
///
/// Listeners bind the wildcard addresses (`0.0.0.0`, and `::` with IPV6_V6ONLY) because REDIRECT
/// rewrites the destination to the primary address of the incoming interface: loopback for traffic
/// over `lo`, the pod address for traffic routed elsewhere. Only the families the probes use are
/// bound. The validator and its probes use the network namespace of the thread that calls `run()`
/// (its listening sockets are created there, and its client threads are spawned from there).
package struct CaptureValidator: Sendable {
  package var probes: [CaptureProbe]
  package var listenerPorts: [UInt16]
  package var timeout: Duration
  package var logger: Logger

  /// - Parameters:
  ///   - probes: run in order, one at a time.
  ///   - listenerPorts: the capture ports to listen on, e.g. `[15001, 15006]`.
  ///   - timeout: budget of each probe, connection retries and the listener's report included.
  package init(probes: [CaptureProbe], listenerPorts: [UInt16], timeout: Duration, logger: Logger) {
    self.probes = probes
    self.listenerPorts = listenerPorts
    self.timeout = timeout
    self.logger = logger
  }

  /// Listens on the listener ports, runs every probe and returns one result per probe, in order.
  ///
  /// Throws only when the validator cannot set itself up: a listener port is taken (by the proxy or
  /// another process), IPv6 is unavailable for an IPv6 probe, or the process may not create sockets
  /// as the probes' uid/gid.
  package func run() async throws(InterceptionError) -> [CaptureProbeResult] {
    guard !probes.isEmpty else { return [] }
    let ports = Array(Set(listenerPorts)).sorted()
    let families = IPFamily.allCases.filter { family in probes.contains { $0.family == family } }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var listeners: [any Channel] = []
    var outcome: Result<[CaptureProbeResult], InterceptionError>
    do throws(InterceptionError) {
      for family in families {
        for port in ports {
          listeners.append(try await listen(family: family, port: port, group: group))
        }
      }
      var results: [CaptureProbeResult] = []
      for probe in probes {
        results.append(try await run(probe, listenerPorts: ports))
      }
      outcome = .success(results)
    } catch {
      outcome = .failure(error)
    }

    for listener in listeners {
      try? await listener.close()
    }
    do {
      try await group.shutdownGracefully()
    } catch {
      logger.debug("validator event loop group did not shut down cleanly", metadata: ["error": "\(error)"])
    }
    return try outcome.get()
  }

  private func run(_ probe: CaptureProbe, listenerPorts: [UInt16]) async throws(InterceptionError)
    -> CaptureProbeResult
  {
    let dialer = ProbeDialer(probe: probe, listenerPorts: listenerPorts, timeout: timeout)
    let result = try await ProbeThread.run { dialer.dial() }.get()
    var metadata: Logger.Metadata = ["probe": "\(probe)"]
    if let port = result.landedOnPort { metadata["listener"] = "\(port)" }
    if let original = result.originalDestination { metadata["original-destination"] = "\(original)" }
    if let failure = result.failure {
      metadata["failure"] = "\(failure)"
      logger.warning("capture probe failed", metadata: metadata)
    } else {
      logger.info("capture probe landed", metadata: metadata)
    }
    return result
  }

  /// Binds one wildcard listener that answers every connection with an `OriginalDestinationReporter`.
  private func listen(
    family: IPFamily, port: UInt16, group: MultiThreadedEventLoopGroup
  ) async throws(InterceptionError) -> any Channel {
    let host = family == .v4 ? "0.0.0.0" : "::"
    let shown = family == .v4 ? "0.0.0.0:\(port)" : "[::]:\(port)"
    let logger = self.logger
    // No SO_REUSEPORT: with it, binding next to a proxy that also set it (Envoy does by default)
    // would succeed and the kernel would share the probes between the two listeners.
    var bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            OriginalDestinationReporter(listenerPort: port, logger: logger))
        }
      }
    if family == .v6 {
      bootstrap = bootstrap.serverChannelOption(
        ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
    }
    do {
      let address = try SocketAddress(ipAddress: host, port: Int(port))
      let channel = try await bootstrap.bind(to: address).get()
      logger.debug("validator listening", metadata: ["address": "\(shown)"])
      return channel
    } catch let error as IOError
      where family == .v6 && [EAFNOSUPPORT, EADDRNOTAVAIL].contains(error.errnoCode)
    {
      throw InterceptionError(
        .unsupported,
        "cannot listen on \(shown) for the IPv6 probes: IPv6 is not available in this network namespace",
        cause: error)
    } catch {
      throw InterceptionError(
        .validationFailed,
        "cannot listen on \(shown): the proxy or another process may already hold it; "
          + "stop it before running the validation",
        cause: error)
    }
  }
}
