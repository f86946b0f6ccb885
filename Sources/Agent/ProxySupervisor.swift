package import Logging
internal import ServiceLifecycle
internal import Subprocess
internal import Synchronization

#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// How the proxy is started and kept running, and how it is stopped.
package struct ProxySupervisionPolicy: Sendable {
  /// Unexpected exits tolerated in a row; one more and the agent gives up (exits non-zero).
  package var maxRestarts: Int = 10
  package var initialBackoff: Duration = .milliseconds(500)
  package var maxBackoff: Duration = .seconds(30)
  /// A proxy that ran at least this long before exiting resets the count of exits in a row.
  package var stableAfter: Duration = .seconds(60)
  /// ProxyConfig.terminationDrainDuration: the wait after the drain call on SIGTERM.
  package var terminationDrainDuration: Duration = .seconds(5)
  /// EXIT_ON_ZERO_ACTIVE_CONNECTIONS: wait `minimumDrainDuration`, then poll active connections every
  /// `activeConnectionsPollInterval` until none is left.
  package var exitOnZeroActiveConnections = false
  package var minimumDrainDuration: Duration = .seconds(5)
  package var activeConnectionsPollInterval: Duration = .seconds(1)
  /// After SIGTERM to the proxy, how long before SIGKILL.
  package var stopGrace: Duration = .seconds(5)

  package init() {}
}

/// The running proxy's generation and pid (a class so child tasks can share the lock).
final class RunningProxy: Sendable {
  let slot = Mutex<(generation: Int, pid: Int32)?>(nil)
}

/// What to run: the binary, pilot-agent's argument list, the environment, and the identity to run as.
package struct ProxyLaunch: Sendable {
  package var binaryPath: String
  package var arguments: [String]
  package var environment: [String: String]
  /// uid/gid to switch to (the agent must be root); nil keeps the agent's.
  package var userID: UInt32?
  package var groupID: UInt32?
  /// The `pilotfish` executable, run as ``PrivilegeDrop``'s trampoline when switching ids.
  package var trampoline: String?

  package init(
    binaryPath: String, arguments: [String], environment: [String: String], userID: UInt32? = nil,
    groupID: UInt32? = nil
  ) {
    self.binaryPath = binaryPath
    self.arguments = arguments
    self.environment = environment
    self.userID = userID
    self.groupID = groupID
  }
}

/// Supervises the proxy process (pilot-agent's `pkg/envoy`), as a swift-service-lifecycle `Service`.
///
/// Starts the proxy with its standard output and error forwarded to the agent's. An unexpected exit restarts
/// it after an exponential backoff (readiness is 503 meanwhile); more than `maxRestarts` exits in a row and
/// `run()` throws, so the agent exits non-zero. Graceful shutdown (SIGTERM) drains inbound listeners through
/// the admin API, waits (a fixed time, or until no connection is left), then stops the proxy (SIGTERM, SIGKILL
/// after a grace). `quit()` (`/quitquitquit`) stops it without draining and ends `run()` normally;
/// `drainNow()` (`/drain`) drains without exiting, and a later SIGTERM then stops the proxy at once.
package final class ProxySupervisor: Service, Sendable {
  enum Event: Sendable {
    case exited(generation: Int, status: String, ranFor: Duration)
    case restartDue(generation: Int)
    case shutdown
    case quit
    case drainNow
    case drainWaitOver
    case killDue(generation: Int)
  }

  private let launch: ProxyLaunch
  private let policy: ProxySupervisionPolicy
  private let adminPort: Int
  private let state: AgentState
  private let client: LocalHTTPClient
  private let logger: Logger
  private let events: AsyncStream<Event>
  private let continuation: AsyncStream<Event>.Continuation
  /// The running proxy's generation and pid, for signals; cleared when it has been reaped.
  private let running = RunningProxy()

  package init(
    launch: ProxyLaunch, policy: ProxySupervisionPolicy, adminPort: Int, state: AgentState,
    client: LocalHTTPClient = LocalHTTPClient(), logger: Logger
  ) {
    self.launch = launch
    self.policy = policy
    self.adminPort = adminPort
    self.state = state
    self.client = client
    self.logger = logger
    (events, continuation) = AsyncStream.makeStream(of: Event.self)
  }

  /// `/quitquitquit`: stop the proxy without draining; `run()` then returns normally.
  package func quit() { continuation.yield(.quit) }

  /// `/drain`: drain inbound listeners now (the proxy keeps running); a later shutdown skips the drain.
  package func drainNow() { continuation.yield(.drainNow) }

  package func run() async throws {
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      defer { tasks.cancelAll() }
      try await withGracefulShutdownHandler {
        try await supervise(&tasks)
      } onGracefulShutdown: { [continuation] in
        continuation.yield(.shutdown)
      }
    }
  }

  private enum Phase {
    case running
    case backingOff
    /// Draining; the proxy is stopped when the wait is over.
    case draining
    /// SIGTERM sent; waiting for the exit.
    case stopping
  }

  private func supervise(_ tasks: inout ThrowingTaskGroup<Void, any Error>) async throws {
    var generation = 1
    var exitsInARow = 0
    var phase = Phase.running
    var drainDisabled = false
    start(generation, in: &tasks)

    for await event in events {
      switch event {
      case .exited(let g, let status, let ranFor):
        guard g == generation else { continue }
        if phase == .draining || phase == .stopping {
          logger.info("proxy exited", metadata: ["agent.proxy.status": "\(status)"])
          return
        }
        if ranFor >= policy.stableAfter { exitsInARow = 0 }
        exitsInARow += 1
        if exitsInARow > policy.maxRestarts {
          logger.error(
            "proxy exited \(exitsInARow) times in a row (last: \(status)); restart budget of \(policy.maxRestarts) exhausted, giving up"
          )
          throw AgentError(
            .proxy,
            "proxy \(launch.binaryPath) exited \(exitsInARow) times in a row (last: \(status)); "
              + "restart budget of \(policy.maxRestarts) exhausted")
        }
        let backoff = backoff(after: exitsInARow)
        logger.warning(
          "proxy exited unexpectedly (\(status)\(status.contains("signal 9") ? ", may have been out of memory killed" : "")); restarting in \(backoff) (restart \(exitsInARow) of at most \(policy.maxRestarts))"
        )
        phase = .backingOff
        tasks.addTask { [continuation] in
          try? await Task.sleep(for: backoff)
          if !Task.isCancelled { continuation.yield(.restartDue(generation: g)) }
        }

      case .restartDue(let g):
        guard g == generation, phase == .backingOff else { continue }
        generation += 1
        state.countRestart()
        phase = .running
        start(generation, in: &tasks)

      case .shutdown, .quit:
        let quitting: Bool
        if case .quit = event { quitting = true } else { quitting = false }
        if quitting { drainDisabled = true }
        guard phase == .running || phase == .backingOff else { continue }
        state.beginTerminating()
        if phase == .backingOff || running.slot.withLock({ $0 == nil }) {
          logger.info("no proxy running; exiting")
          return
        }
        if drainDisabled {
          logger.info(quitting ? "quit requested; stopping the proxy without drain" : "stopping the proxy")
          phase = .stopping
          stop(generation, in: &tasks)
        } else {
          phase = .draining
          await drain(query: "/drain_listeners?inboundonly&graceful")
          let policy = self.policy
          let adminPort = self.adminPort
          tasks.addTask { [continuation, client, logger] in
            await Self.waitForDrain(policy: policy, adminPort: adminPort, client: client, logger: logger)
            if !Task.isCancelled { continuation.yield(.drainWaitOver) }
          }
        }

      case .drainNow:
        guard phase == .running, !drainDisabled else { continue }
        drainDisabled = true
        await drain(query: "/drain_listeners?inboundonly&graceful&skip_exit")

      case .drainWaitOver:
        guard phase == .draining else { continue }
        logger.info("drain done; stopping the proxy")
        phase = .stopping
        stop(generation, in: &tasks)

      case .killDue(let g):
        guard phase == .stopping else { continue }
        if signal(SIGKILL, ifGeneration: g) {
          logger.warning("proxy still running \(policy.stopGrace) after SIGTERM; sent SIGKILL")
        }
      }
    }
  }

  private func backoff(after exits: Int) -> Duration {
    var delay = policy.initialBackoff
    for _ in 1..<max(1, exits) {
      delay *= 2
      if delay >= policy.maxBackoff { return policy.maxBackoff }
    }
    return min(delay, policy.maxBackoff)
  }

  private func start(_ generation: Int, in tasks: inout ThrowingTaskGroup<Void, any Error>) {
    let launch = self.launch
    logger.info(
      "starting proxy",
      metadata: [
        "agent.proxy.binary": "\(launch.binaryPath)", "agent.proxy.args": "\(launch.arguments)",
        "agent.proxy.generation": "\(generation)",
      ])
    tasks.addTask { [continuation, running, state, logger] in
      let started = ContinuousClock.now
      var status: String
      do {
        var options = PlatformOptions()
        var executable = launch.binaryPath
        var arguments = launch.arguments
        let ids: (uid: UInt32, gid: UInt32)? = launch.userID.map { (uid: $0, gid: launch.groupID ?? $0) }
        if let trampoline = launch.trampoline {
          // Also without an id change: the trampoline makes the proxy die with the agent (PrivilegeDrop).
          executable = trampoline
          arguments = PrivilegeDrop.trampolineArguments(
            ids: ids, parentPID: getpid(), binary: launch.binaryPath, arguments: launch.arguments)
        } else if let ids {
          options.userID = ids.uid
          options.groupID = ids.gid
          options.supplementaryGroups = [ids.gid]
        }
        var environment: [Environment.Key: String] = [:]
        for (key, value) in launch.environment {
          if let key = Environment.Key(rawValue: key) { environment[key] = value }
        }
        let result = try await Subprocess.run(
          .path(.init(executable)), arguments: .init(arguments),
          environment: .custom(environment), platformOptions: options, input: .none,
          output: .currentStandardOutput, error: .currentStandardError
        ) { execution in
          running.slot.withLock { $0 = (generation, execution.processIdentifier.value) }
          state.proxyStarted(generation: generation)
        }
        switch result.terminationStatus {
        case .exited(let code): status = "exit status \(code)"
        case .signaled(let signal): status = "killed by signal \(signal)"
        }
      } catch {
        status = "could not start: \(error)"
        logger.error("cannot start the proxy \(launch.binaryPath): \(error)")
      }
      running.slot.withLock { if $0?.generation == generation { $0 = nil } }
      state.proxyStopped(generation: generation)
      continuation.yield(
        .exited(generation: generation, status: status, ranFor: ContinuousClock.now - started))
    }
  }

  /// SIGTERM now, SIGKILL after the grace if it is still running.
  private func stop(_ generation: Int, in tasks: inout ThrowingTaskGroup<Void, any Error>) {
    _ = signal(SIGTERM, ifGeneration: generation)
    let grace = policy.stopGrace
    tasks.addTask { [continuation] in
      try? await Task.sleep(for: grace)
      if !Task.isCancelled { continuation.yield(.killDue(generation: generation)) }
    }
  }

  /// Sends `signal` to the proxy of this generation if it is still running; true if sent.
  private func signal(_ signal: Int32, ifGeneration generation: Int) -> Bool {
    running.slot.withLock { current in
      guard let current, current.generation == generation else { return false }
      return kill(current.pid, signal) == 0
    }
  }

  private func drain(query: String) async {
    logger.info("draining the proxy's listeners", metadata: ["agent.proxy.admin": "POST \(query)"])
    do {
      let response = try await client.request(
        "POST", host: "127.0.0.1", port: adminPort, path: query, timeout: .seconds(5))
      if response.status != 200 {
        logger.warning("drain request answered \(response.status): \(response.text)")
      }
    } catch {
      logger.warning("drain request failed: \(error)")
    }
  }

  /// The wait after the drain call: `terminationDrainDuration`, or with EXIT_ON_ZERO_ACTIVE_CONNECTIONS the
  /// minimum drain duration and then polls until no connection is left (or no stat, or 5 errors in a row).
  static func waitForDrain(
    policy: ProxySupervisionPolicy, adminPort: Int, client: LocalHTTPClient, logger: Logger
  ) async {
    guard policy.exitOnZeroActiveConnections else {
      try? await Task.sleep(for: policy.terminationDrainDuration)
      return
    }
    try? await Task.sleep(for: policy.minimumDrainDuration)
    var errors = 0
    while !Task.isCancelled {
      do {
        let response = try await client.request(
          host: "127.0.0.1", port: adminPort, path: AdminStats.activeConnectionsQuery, timeout: .seconds(2))
        guard response.status == 200 else {
          throw AgentError(.http, "active connections query answered \(response.status)")
        }
        errors = 0
        let active = AdminStats.activeConnections(response.text)
        if active <= 0 {
          logger.info("no active connections left (\(active)); stopping the proxy")
          return
        }
        logger.info("waiting for \(active) active connections to close")
      } catch {
        errors += 1
        logger.warning("cannot read active connections: \(error)")
        if errors > 4 { return }
      }
      try? await Task.sleep(for: policy.activeConnectionsPollInterval)
    }
  }
}
