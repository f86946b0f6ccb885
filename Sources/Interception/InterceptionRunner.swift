internal import Foundation
package import Logging

/// Carries out `pilotfish istio-iptables`: cleanup, or plan → apply (or print, for a dry run) → validate.
///
/// Invariant: a failed run leaves the namespace as it found it. Routing is programmed before the rules and
/// rolled back if they fail; the rules themselves are replaced in one transaction per backend.
package struct InterceptionRunner {
  /// Exit code for a failed `--run-validation`, as istio-iptables uses.
  package static let validationFailedExitCode: Int32 = 126

  package var settings: CaptureSettings
  package var host: HostFacts
  package var logger: Logger
  /// Where dry-run output goes (standard output in the CLI).
  package var output: @Sendable (String) -> Void

  package init(
    settings: CaptureSettings, host: HostFacts, logger: Logger, output: @escaping @Sendable (String) -> Void
  ) {
    self.settings = settings
    self.host = host
    self.logger = logger
    self.output = output
  }

  /// Runs and returns the process exit code; throws for errors that name their cause.
  package func run() throws(InterceptionError) -> Int32 {
    for notice in settings.notices { logger.notice("\(notice)") }
    let config = settings.config
    if settings.cleanupOnly {
      try cleanup()
      return 0
    }
    if !settings.skipRuleApply {
      try install(RuleBuilder.build(config))
    }
    if settings.runValidation && !settings.dryRun {
      return try validate()
    }
    return 0
  }

  // MARK: - Install

  private func install(_ ruleset: Ruleset) throws(InterceptionError) {
    let config = settings.config
    if !host.hasNetAdmin && !settings.dryRun {
      throw InterceptionError(
        .unsupported,
        "pilotfish istio-iptables needs CAP_NET_ADMIN to change rules in this network namespace: run it as root "
          + "with securityContext.capabilities.add [NET_ADMIN, NET_RAW] (or use --dry-run to only print the rules)"
      )
    }
    let decision = try chooseBackend(families: ruleset.families)
    let backend = Self.backend(decision.backend)
    let plan = backend.plan(ruleset)
    let families = ruleset.families.map(\.description).joined(separator: "+")

    if settings.dryRun {
      emit("# backend: \(decision.backend) (\(decision.reason)); families: \(families)")
      for (label, text) in plan.payloads {
        emit("# \(label)")
        emit(text, terminator: "")
      }
      if let routing = config.tproxyRouting {
        emit(routing.policyRoutes ? "# netlink (TPROXY policy routing)" : "# netlink (IPv6 passthrough source)")
        for line in PolicyRouting.describe(routing) { emit(line) }
      }
      if let current = plan.current {
        let diff = plan.diff
        if diff.isEmpty {
          emit("# difference from what is installed now: none (\(current.ruleCount) rules already in place)")
        } else {
          emit("# difference from what is installed now (\(current.ruleCount) Pilotfish rules installed):")
          for line in diff { emit(line) }
        }
      } else {
        emit(
          "# difference from what is installed now: unknown (\(plan.currentUnreadableReason ?? "unreadable"))"
        )
      }
      return
    }
    if let reason = plan.currentUnreadableReason { throw InterceptionError(.stateUnreadable, reason) }
    logger.info(
      "interception backend chosen",
      metadata: ["interception.backend": "\(decision.backend)", "interception.reason": "\(decision.reason)"])

    // Routing first: without the marks it is inert, and it is removed again if the rules fail.
    var routingAdded = false
    if let routing = config.tproxyRouting {
      routingAdded = (try? PolicyRouting.installedPieces(routing))?.isEmpty ?? true
      try PolicyRouting.install(routing)
    }
    let start = ContinuousClock.now
    if plan.upToDate && !settings.forceApply {
      logger.info(
        "rules already in place; nothing changed",
        metadata: ["interception.rules": "\(plan.desired.ruleCount)", "interception.families": "\(families)"])
    } else {
      do {
        try backend.apply(plan)
      } catch {
        if routingAdded, let routing = config.tproxyRouting { try? PolicyRouting.remove(routing) }
        throw error
      }
      let verb = (plan.current?.chains.isEmpty ?? true) ? "installed" : "replaced"
      logger.info(
        "\(verb) interception rules",
        metadata: [
          "interception.backend": "\(decision.backend)", "interception.rules": "\(plan.desired.ruleCount)",
          "interception.families": "\(families)", "interception.elapsed": "\(ContinuousClock.now - start)",
        ])
      for line in plan.diff { logger.debug("\(line)") }
    }
    // A changed backend or mode leaves nothing behind.
    for other in BackendKind.allCases where other != decision.backend {
      let backend = Self.backend(other)
      guard backend.mayHoldRules(families: ruleset.families),
        let removed = try? backend.removeAll(families: ruleset.families), removed > 0
      else {
        continue
      }
      logger.notice("removed \(removed) Pilotfish rules left by the \(other) backend")
    }
    if config.tproxyRouting?.policyRoutes != true, plan.current?.hasTProxy == true {
      // Left by TPROXY mode: its policy routing goes; `::6` stays if this mode still needs it.
      var leftover = Self.routing(config, families: ruleset.families)
      leftover.ipv6PassthroughAddress = leftover.ipv6PassthroughAddress && config.tproxyRouting == nil
      try PolicyRouting.remove(leftover)
    }
  }

  private func chooseBackend(families: [IPFamily]) throws(InterceptionError) -> BackendSelector.Decision {
    switch settings.backend {
    case .nftables: return .init(backend: .nftables, reason: "--backend nftables")
    case .iptablesLegacy: return .init(backend: .iptablesLegacy, reason: "--backend iptables-legacy")
    case .iptablesNft: return .init(backend: .iptablesNft, reason: "--backend iptables-nft")
    case .auto:
      if settings.dryRun && !host.hasNetAdmin {
        return .init(
          backend: .nftables, reason: "auto; without CAP_NET_ADMIN the namespace cannot be inspected")
      }
      return try BackendSelector(families: families).choose()
    }
  }

  package static func backend(_ kind: BackendKind) -> any InterceptionBackend {
    switch kind {
    case .nftables: NftablesBackend()
    case .iptablesLegacy: IptablesBackend(flavor: .legacy)
    case .iptablesNft: IptablesBackend(flavor: .nft)
    }
  }

  static func routing(_ config: CaptureConfig, families: [IPFamily]) -> TProxyRouting {
    TProxyRouting(
      mark: config.tproxyMark, table: config.tproxyRouteTable, families: families,
      ipv6PassthroughAddress: families.contains(.v6))
  }

  // MARK: - Cleanup

  private func cleanup() throws(InterceptionError) {
    let families: [IPFamily] = host.kernelIPv6 ? [.v4, .v6] : [.v4]
    if settings.dryRun {
      for kind in BackendKind.allCases {
        guard let state = try? Self.backend(kind).installedState(families: families), !state.chains.isEmpty
        else {
          continue
        }
        emit("# \(kind): would remove \(state.ruleCount) rules in \(state.chains.count) chains")
      }
      for line in PolicyRouting.describe(Self.routing(settings.config, families: families)) {
        emit("# would remove: \(line)")
      }
      return
    }
    if !host.hasNetAdmin {
      throw InterceptionError(
        .unsupported, "pilotfish istio-iptables --cleanup-only needs CAP_NET_ADMIN in this network namespace")
    }
    var total = 0
    for kind in BackendKind.allCases {
      let backend = Self.backend(kind)
      guard backend.mayHoldRules(families: families) else { continue }
      do {
        let removed = try backend.removeAll(families: families)
        if removed > 0 { logger.info("removed \(removed) rules installed with \(kind)") }
        total += removed
      } catch  where error.code == .unsupported {
        logger.debug("skipping \(kind): \(error.message)")
      }
    }
    try PolicyRouting.remove(Self.routing(settings.config, families: families))
    logger.info("cleanup complete", metadata: ["interception.rules_removed": "\(total)"])
  }

  // MARK: - Validation

  /// The probes that prove capture works: inbound (the proxy's uid over lo, as Istio's validator does) for
  /// each family with an address, and outbound (another uid towards the default gateway) when outbound
  /// capture would take that destination.
  package func validationProbes() -> [CaptureProbe] {
    let c = settings.config
    var probes: [CaptureProbe] = []
    let uid = c.proxyUIDs.first ?? 1337
    let gid = c.proxyGIDs.first ?? uid
    probes.append(
      CaptureProbe(
        family: .v4, source: "127.0.0.1", destination: "127.0.0.6", port: settings.probePort, uid: uid,
        gid: gid,
        expectedListenerPort: c.inboundCapturePort, label: "inbound IPv4 (proxy uid \(uid) over lo)"))
    if c.ipv6, let address = host.addresses.first(where: { $0.family == .v6 }) {
      probes.append(
        CaptureProbe(
          family: .v6, source: nil, destination: address.addressText, port: settings.probePort, uid: uid,
          gid: gid,
          expectedListenerPort: c.inboundCapturePort, label: "inbound IPv6 (proxy uid \(uid) over lo)"))
    }
    let appID: UInt32 = 65534
    let groupsAllowApp =
      (c.ownerGroupsInclude?.contains(appID) ?? true) && !c.ownerGroupsExclude.contains(appID)
    guard c.outboundRanges != .none, groupsAllowApp, !c.proxyUIDs.contains(appID),
      !c.proxyGIDs.contains(appID),
      !c.outboundExcludePorts.contains(settings.probePort)
    else { return probes }
    for gateway in host.defaultGateways where c.families.contains(gateway.family) {
      let included: Bool
      switch c.outboundRanges {
      case .none: included = false
      case .all: included = true
      case .ranges(let ranges): included = ranges.contains { $0.contains(gateway) }
      }
      guard included, !c.outboundExcludeRanges.contains(where: { $0.contains(gateway) }) else { continue }
      probes.append(
        CaptureProbe(
          family: gateway.family, source: nil, destination: gateway.addressText, port: settings.probePort,
          uid: appID, gid: appID, expectedListenerPort: c.proxyPort,
          label: "outbound \(gateway.family) (uid \(appID) to the default gateway)"))
    }
    return probes
  }

  private func validate() throws(InterceptionError) -> Int32 {
    let probes = validationProbes()
    let validator = CaptureValidator(
      probes: probes, listenerPorts: [settings.config.proxyPort, settings.config.inboundCapturePort],
      timeout: settings.probeTimeout, logger: logger)
    let results = try Self.blocking { () async throws(InterceptionError) in try await validator.run() }
    var failed = false
    for result in results {
      if let failure = result.failure {
        failed = true
        logger.error("validation failed: \(result.probe.label): \(failure)")
      } else {
        logger.info(
          "validation passed: \(result.probe.label) landed on :\(result.landedOnPort ?? 0), original destination \(result.originalDestination ?? "?")"
        )
      }
    }
    if failed {
      logger.error(
        "iptables validation failed; workload is not ready for Istio: connections do not reach the proxy's capture ports. Check the init container's logs and that NET_ADMIN was granted"
      )
      return Self.validationFailedExitCode
    }
    return 0
  }

  /// Runs async work to completion from synchronous code (the CLI's main thread).
  static func blocking<T: Sendable>(
    _ body: @escaping @Sendable () async throws(InterceptionError) -> T
  ) throws(InterceptionError) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
      do {
        box.result = .success(try await body())
      } catch {
        box.result = .failure(
          error as? InterceptionError
            ?? InterceptionError(.validationFailed, "validation stopped", cause: error))
      }
      done.signal()
    }
    done.wait()
    return try box.result!.get()
  }
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
  var result: Result<T, InterceptionError>?
}

extension InterceptionRunner {
  fileprivate func emit(_ text: String, terminator: String = "\n") {
    output(text + terminator)
  }
}
