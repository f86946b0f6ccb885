internal import Logging
package import NIOCore
internal import Synchronization

/// The listeners: the bootstrap's static ones and those LDS adds, updates and removes. Binds them on the
/// data path's workers (which accept, hand off by original destination, run the listener filters and give
/// each connection to its filter chain), and stops accepting for drain and shutdown.
///
/// Updates follow Envoy, with less collateral damage: a listener warms (is not served) until what it needs
/// has arrived (`isWarm`: its RDS route tables); an update that changes only filter chains is applied in
/// place — unchanged chains keep their filter and their connections, changed and removed chains drain;
/// any other change replaces the listener (all of its old chains drain). A removed listener stops accepting
/// at once and its chains drain. Drained chains' connections are closed when the drain time is over.
package final class ListenerManager: Sendable {
  private struct Entry {
    var listener: ActiveListener
    /// Where the workers read the listener from, once bound.
    var slot: ConfigCell<ActiveListener>?
    var binding: (any ListenerEngineBinding)?
  }

  /// Chains whose connections are closed at `deadline`.
  private struct PendingDrain {
    var listener: ActiveListener
    var drains: [ChainDrain]
    var deadline: ContinuousClock.Instant
  }

  private struct State {
    var active: [String: Entry] = [:]
    /// Names in the order they were first added (the hand-off table and admin output follow it).
    var order: [String] = []
    var warming: [String: ActiveListener] = [:]
    var draining: [PendingDrain] = []
    var started = false
  }

  private let state = Mutex(State())
  private let updates = AsyncSerializer()
  private let handOff: ConfigCell<HandOffTable>
  private let proxy: ProxyContext
  private let workersStarted: Gauge
  /// The overload manager's `global_downstream_max_connections`, over every listener that does not
  /// set `ignore_global_conn_limit`.
  private let globalConnectionLimit: Int?
  /// The data path (ProxyEngine's reactors) that binds and serves the listeners.
  private let engine: any ListenerEngine
  private let isWarm: @Sendable (ActiveListener) -> Bool
  private let stats: Stats

  private struct Stats {
    let added: Counter
    let modified: Counter
    let removed: Counter
    let inPlaceUpdated: Counter
    let createSuccess: Counter
    let createFailure: Counter
    let active: Gauge
    let warming: Gauge
    let draining: Gauge

    init(_ store: StatsStore) {
      added = store.counter("listener_manager.listener_added")
      modified = store.counter("listener_manager.listener_modified")
      removed = store.counter("listener_manager.listener_removed")
      inPlaceUpdated = store.counter("listener_manager.listener_in_place_updated")
      createSuccess = store.counter("listener_manager.listener_create_success")
      createFailure = store.counter("listener_manager.listener_create_failure")
      active = store.gauge("listener_manager.total_listeners_active")
      warming = store.gauge("listener_manager.total_listeners_warming")
      draining = store.gauge("listener_manager.total_listeners_draining")
    }
  }

  /// `isWarm` says whether a listener has what it needs to serve (default: always).
  package init(
    listeners configs: [Listener], context: ProxyContext, engine: any ListenerEngine,
    globalConnectionLimit: Int? = nil, isWarm: @escaping @Sendable (ActiveListener) -> Bool = { _ in true }
  ) {
    self.globalConnectionLimit = globalConnectionLimit
    self.engine = engine
    self.proxy = context
    self.isWarm = isWarm
    self.stats = Stats(context.stats)
    self.workersStarted = context.stats.gauge("listener_manager.workers_started")
    var initial = State()
    for config in configs where initial.active[config.name] == nil {
      initial.active[config.name] = Entry(listener: ActiveListener(config: config, stats: context.stats))
      initial.order.append(config.name)
      stats.added.inc()
    }
    self.handOff = ConfigCell(HandOffTable(initial.order.compactMap { initial.active[$0]?.listener }))
    state.withLock { $0 = initial }
    publishGauges()
  }

  /// The active listeners, in the order they were added.
  package var listeners: [ActiveListener] {
    state.withLock { state in state.order.compactMap { state.active[$0]?.listener } }
  }

  /// Listeners waiting for their dependencies (RDS).
  package var warmingListeners: [ActiveListener] {
    state.withLock { Array($0.warming.values) }.sorted { $0.name < $1.name }
  }

  /// Listeners removed or replaced whose connections are still draining.
  package var drainingListeners: [ActiveListener] {
    state.withLock { $0.draining.map(\.listener) }
  }

  package func listener(named name: String) -> ActiveListener? {
    state.withLock { $0.active[name]?.listener }
  }

  /// Binds every active listener with `bind_to_port`; on failure closes what was bound and throws an error
  /// that names the listener and address. Listeners added later are bound as they become active.
  package func start() async throws(ListenerError) {
    let result: ListenerError? = await updates.run {
      for listener in self.listeners {
        if let error = await self.bindIfNeeded(listener, replacing: nil) {
          await self.stopAcceptingNow(inboundOnly: false)
          return error
        }
      }
      self.state.withLock { $0.started = true }
      self.workersStarted.set(1)
      return nil
    }
    if let result { throw result }
  }

  /// Applies a listener update (LDS): `listeners` are added or replace the listener of the same name (an
  /// identical one is left alone), `removed` go. Throws, changing nothing, when the result would have two
  /// listeners on one address; a listener that cannot be bound is reported and the others are applied.
  package func apply(
    _ listeners: [Listener], removed: [String], drainTime: Duration
  ) async throws(ListenerUpdateError) {
    let outcome = await updates.run { () async -> Result<[ListenerError], ListenerUpdateError> in
      do throws(ListenerUpdateError) {
        try self.checkAddresses(adding: listeners, removing: Set(removed))
      } catch {
        return .failure(error)
      }
      var failures: [ListenerError] = []
      for name in removed { await self.remove(name, drainTime: drainTime) }
      for config in listeners {
        if let failure = await self.addOrUpdate(config, drainTime: drainTime) { failures.append(failure) }
      }
      self.publishHandOff()
      self.publishGauges()
      return .success(failures)
    }
    let failures = try outcome.get()
    if !failures.isEmpty { throw ListenerUpdateError(failures: failures) }
  }

  /// Activates warming listeners whose dependencies have arrived (call after an RDS update). Returns the
  /// listeners that became active.
  @discardableResult
  package func activateWarmListeners(drainTime: Duration, force: Bool = false) async -> [String] {
    await updates.run {
      let ready = self.state.withLock { state in
        state.warming.values.filter { force || self.isWarm($0) }.sorted { $0.name < $1.name }
      }
      for listener in ready {
        self.state.withLock { $0.warming[listener.name] = nil }
        _ = await self.activate(listener, drainTime: drainTime)
      }
      if !ready.isEmpty {
        self.publishHandOff()
        self.publishGauges()
      }
      return ready.map(\.name)
    }
  }

  /// Closes the connections of drains whose time is over (called periodically).
  package func closeExpiredDrains(now: ContinuousClock.Instant = .now) async {
    let expired = state.withLock { state -> [ChainDrain] in
      let due = state.draining.filter { $0.deadline <= now }
      state.draining.removeAll { $0.deadline <= now }
      return due.flatMap(\.drains)
    }
    guard !expired.isEmpty else { return }
    await engine.closeConnections(drainedBy: expired)
    publishGauges()
  }

  /// Closes the listening sockets (all, or only those with traffic_direction INBOUND).
  package func stopAccepting(inboundOnly: Bool) async {
    await updates.run { await self.stopAcceptingNow(inboundOnly: inboundOnly) }
  }

  // MARK: Updates (run one at a time)

  private func stopAcceptingNow(inboundOnly: Bool) async {
    let bindings = state.withLock { state -> [(String, any ListenerEngineBinding)] in
      var out: [(String, any ListenerEngineBinding)] = []
      for name in state.order {
        guard var entry = state.active[name], let binding = entry.binding,
          !inboundOnly || entry.listener.config.trafficDirection == .inbound
        else { continue }
        entry.binding = nil
        entry.slot = nil
        state.active[name] = entry
        out.append((name, binding))
      }
      return out
    }
    for (name, binding) in bindings {
      await binding.stopAccepting()
      proxy.logger.info("listener stopped", metadata: ["proxy.listener": "\(name)"])
    }
  }

  private func checkAddresses(adding configs: [Listener], removing: Set<String>) throws(ListenerUpdateError) {
    var result: [String: Listener] = state.withLock { state in
      var all: [String: Listener] = [:]
      for (name, entry) in state.active where !removing.contains(name) { all[name] = entry.listener.config }
      for (name, listener) in state.warming where !removing.contains(name) { all[name] = listener.config }
      return all
    }
    var seen = Set<String>()
    for config in configs {
      guard seen.insert(config.name).inserted else {
        throw ListenerUpdateError(
          failures: [ListenerError(listener: config.name, address: "", reason: "listed twice in one update")])
      }
      result[config.name] = config
    }
    var bound: [String: String] = [:]
    for (name, config) in result.sorted(by: { $0.key < $1.key })
    where config.bindToPort && config.address.port != 0 {
      let key = config.address.envoyDescription
      if let other = bound[key] {
        throw ListenerUpdateError(
          failures: [
            ListenerError(
              listener: name, address: key, reason: "the address is already used by listener '\(other)'")
          ])
      }
      bound[key] = name
    }
  }

  private func remove(_ name: String, drainTime: Duration) async {
    let (entry, wasWarming) = state.withLock { state -> (Entry?, Bool) in
      let warming = state.warming.removeValue(forKey: name) != nil
      guard let entry = state.active.removeValue(forKey: name) else { return (nil, warming) }
      state.order.removeAll { $0 == name }
      return (entry, warming)
    }
    if let entry {
      await entry.binding?.stopAccepting()
      retire(entry.listener, chains: entry.listener.allChains, drainTime: drainTime)
      proxy.logger.info("listener removed; draining its connections", metadata: ["proxy.listener": "\(name)"])
    }
    if entry != nil || wasWarming { stats.removed.inc() }
  }

  private func addOrUpdate(_ config: Listener, drainTime: Duration) async -> ListenerError? {
    let previous = state.withLock { $0.active[config.name]?.listener ?? $0.warming[config.name] }
    if let previous, previous.config.sameConfig(as: config) { return nil }
    // Chains whose config did not change stay the same objects: same filter, same connections.
    var merged = config
    if let previous, previous.config.configKey == config.configKey {
      let old = previous.allChains
      func reuse(_ chain: FilterChain) -> FilterChain {
        old.first { $0.configKey == chain.configKey && !$0.configKey.isEmpty } ?? chain
      }
      merged.filterChains = config.filterChains.map(reuse)
      merged.defaultFilterChain = config.defaultFilterChain.map(reuse)
    }
    let listener = ActiveListener(config: merged, stats: proxy.stats)
    if previous == nil { stats.added.inc() } else { stats.modified.inc() }
    if isWarm(listener) {
      state.withLock { $0.warming[config.name] = nil }
      return await activate(listener, drainTime: drainTime)
    }
    state.withLock { $0.warming[config.name] = listener }
    proxy.logger.info("listener warming", metadata: ["proxy.listener": "\(config.name)"])
    return nil
  }

  /// Makes `listener` the active one of its name: in place on the old one's sockets when only its filter
  /// chains changed, else on sockets of its own; what the old one had and the new one has not drains.
  private func activate(_ listener: ActiveListener, drainTime: Duration) async -> ListenerError? {
    let name = listener.name
    let (old, started) = state.withLock { ($0.active[name], $0.started) }
    if let old, let slot = old.slot, let binding = old.binding,
      old.listener.config.configKey == listener.config.configKey
    {
      slot.publish(listener)
      listener.setEngineBinding(binding)
      state.withLock { $0.active[name] = Entry(listener: listener, slot: slot, binding: binding) }
      let kept = Set(listener.allChains.map { ObjectIdentifier($0.drain) })
      retire(
        old.listener, chains: old.listener.allChains.filter { !kept.contains(ObjectIdentifier($0.drain)) },
        drainTime: drainTime)
      stats.inPlaceUpdated.inc()
      proxy.logger.info("listener updated in place", metadata: ["proxy.listener": "\(name)"])
      return nil
    }
    if started, let error = await bindIfNeeded(listener, replacing: old) { return error }
    if !started {
      state.withLock { state in
        if state.active[name] == nil { state.order.append(name) }
        state.active[name] = Entry(listener: listener)
      }
    }
    if let old {
      // A replacement that binds stopped the old sockets in `bindIfNeeded`; one that does not, here.
      if !listener.config.bindToPort { await old.binding?.stopAccepting() }
      retire(old.listener, chains: old.listener.allChains, drainTime: drainTime)
    }
    return nil
  }

  /// Binds `listener` (when it binds to a port) and makes it the active one of its name; the listener it
  /// replaces stops accepting once the new sockets are up.
  private func bindIfNeeded(_ listener: ActiveListener, replacing old: Entry?) async -> ListenerError? {
    let name = listener.name
    guard listener.config.bindToPort else {
      state.withLock { state in
        if state.active[name] == nil { state.order.append(name) }
        state.active[name] = Entry(listener: listener)
      }
      return nil
    }
    guard engine.canServe(listener) else {
      stats.createFailure.inc()
      return ListenerError(
        listener: name, address: listener.config.address.envoyDescription,
        reason: "a filter chain ends in a network filter the data path cannot serve")
    }
    // The old sockets go first when the new ones need the same address and cannot share it.
    let sameAddress = old?.listener.config.address == listener.config.address
    if let old, sameAddress, !(listener.config.reusePort && old.listener.config.reusePort) {
      await old.binding?.stopAccepting()
    }
    let slot = ConfigCell(listener)
    do {
      let binding = try await engine.bind(
        slot, handOff: handOff, context: proxy, globalConnectionLimit: globalConnectionLimit)
      listener.setEngineBinding(binding)
      state.withLock { state in
        if state.active[name] == nil { state.order.append(name) }
        state.active[name] = Entry(listener: listener, slot: slot, binding: binding)
      }
      stats.createSuccess.inc()
    } catch {
      stats.createFailure.inc()
      return ListenerError(
        listener: name, address: listener.config.address.envoyDescription, reason: "\(error)")
    }
    if let old { await old.binding?.stopAccepting() }
    proxy.logger.info(
      "listener started",
      metadata: [
        "proxy.listener": "\(name)", "proxy.address": "\(listener.boundAddress?.envoyDescription ?? "?")",
      ])
    return nil
  }

  /// Starts draining `chains` of `listener`; their connections close when `drainTime` is over.
  private func retire(_ listener: ActiveListener, chains: [FilterChain], drainTime: Duration) {
    guard !chains.isEmpty else { return }
    for chain in chains { chain.drain.start() }
    state.withLock {
      $0.draining.append(
        PendingDrain(listener: listener, drains: chains.map(\.drain), deadline: .now + drainTime))
    }
  }

  private func publishHandOff() {
    handOff.publish(HandOffTable(listeners))
  }

  private func publishGauges() {
    let (active, warming, draining) = state.withLock {
      ($0.active.count, $0.warming.count, Set($0.draining.map { ObjectIdentifier($0.listener) }).count)
    }
    stats.active.set(UInt64(active))
    stats.warming.set(UInt64(warming))
    stats.draining.set(UInt64(draining))
  }
}

extension ActiveListener {
  /// The filter chains and the default chain.
  package var allChains: [FilterChain] {
    config.filterChains + (config.defaultFilterChain.map { [$0] } ?? [])
  }
}

extension Listener {
  /// Same listener config and the same filter chains (by their config bytes).
  func sameConfig(as other: Listener) -> Bool {
    guard !configKey.isEmpty, configKey == other.configKey,
      filterChains.count == other.filterChains.count
    else { return false }
    let chainsSame = zip(filterChains, other.filterChains).allSatisfy { $0.configKey == $1.configKey }
    return chainsSame && defaultFilterChain?.configKey == other.defaultFilterChain?.configKey
  }
}

/// Finds the listener a `use_original_dst` listener hands a connection to: exact `IP:port` first, then
/// the wildcard address of the same family and port.
package struct HandOffTable: Sendable {
  private let exact: [SocketAddress: ActiveListener]
  private let wildcard: [WildcardKey: ActiveListener]

  private struct WildcardKey: Hashable {
    var v6: Bool
    var port: Int
  }

  package init(_ listeners: [ActiveListener]) {
    var exact: [SocketAddress: ActiveListener] = [:]
    var wildcard: [WildcardKey: ActiveListener] = [:]
    for listener in listeners {
      let address = listener.config.address
      if address.isAnyAddress {
        let key = WildcardKey(
          v6: { if case .v6 = address { true } else { false } }(), port: address.port ?? 0)
        if wildcard[key] == nil { wildcard[key] = listener }
      } else if exact[address] == nil {
        exact[address] = listener
      }
    }
    self.exact = exact
    self.wildcard = wildcard
  }

  package func listener(for destination: SocketAddress) -> ActiveListener? {
    if let match = exact[destination] { return match }
    let isV6: Bool = if case .v6 = destination { true } else { false }
    return wildcard[WildcardKey(v6: isV6, port: destination.port ?? 0)]
  }
}

/// A listener that could not be started.
package struct ListenerError: Error, Equatable, Sendable, CustomStringConvertible {
  package var listener: String
  package var address: String
  package var reason: String

  package var description: String {
    address.isEmpty
      ? "listener '\(listener)': \(reason)" : "listener '\(listener)': cannot bind to \(address): \(reason)"
  }
}

/// A listener update that was refused (nothing changed) or partly failed (the listed listeners).
package struct ListenerUpdateError: Error, Equatable, Sendable, CustomStringConvertible {
  package var failures: [ListenerError]

  package var description: String { failures.map(\.description).joined(separator: "; ") }
}
