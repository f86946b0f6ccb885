package import Foundation
internal import Synchronization

/// What the agent's components share: whether a proxy is running (and which start, its generation), whether
/// the agent is terminating, the readiness cache, and the counters behind the `istio_agent_*` metrics.
/// Survives proxy restarts; one instance per agent.
package final class AgentState: Sendable {
  package enum ScrapeSource: String, Sendable, CaseIterable {
    case envoy, application, agent
  }

  private struct Values {
    var runningGeneration: Int?
    var terminating = false
    var readyGeneration: Int?
    var readyReason = "proxy not started"
    var restarts = 0
    var scrapes = 0
    var scrapeFailures: [ScrapeSource: Int] = [:]
    var startupDuration: Double?
  }

  private let values = Mutex(Values())
  package let startTime = Date()

  package init() {}

  package func proxyStarted(generation: Int) {
    values.withLock { $0.runningGeneration = generation }
  }

  package func proxyStopped(generation: Int) {
    values.withLock {
      if $0.runningGeneration == generation { $0.runningGeneration = nil }
    }
  }

  /// The generation of the proxy running now, if any.
  package var runningGeneration: Int? { values.withLock { $0.runningGeneration } }

  package func beginTerminating() { values.withLock { $0.terminating = true } }
  package var isTerminating: Bool { values.withLock { $0.terminating } }

  /// Caches "ready" for this proxy generation (Istio caches once ready; a restarted proxy is checked again).
  /// Returns true the first time, so the caller logs the transition once.
  package func markReady(generation: Int) -> Bool {
    values.withLock {
      guard $0.readyGeneration != generation else { return false }
      $0.readyGeneration = generation
      if $0.startupDuration == nil { $0.startupDuration = Date().timeIntervalSince(startTime) }
      return true
    }
  }

  package func isReadyCached(generation: Int) -> Bool { values.withLock { $0.readyGeneration == generation } }

  /// Remembers the latest not-ready reason; returns true when it changed (so it is logged once per change).
  package func noteNotReady(_ reason: String) -> Bool {
    values.withLock {
      guard $0.readyReason != reason else { return false }
      $0.readyReason = reason
      return true
    }
  }

  package func countRestart() { values.withLock { $0.restarts += 1 } }
  package var restarts: Int { values.withLock { $0.restarts } }

  package func countScrape() { values.withLock { $0.scrapes += 1 } }
  package func countScrapeFailure(_ source: ScrapeSource) {
    values.withLock { $0.scrapeFailures[source, default: 0] += 1 }
  }

  package struct MetricsSnapshot: Sendable {
    package var restarts: Int
    package var scrapes: Int
    package var scrapeFailures: [ScrapeSource: Int]
    package var startupDuration: Double?
    package var proxyRunning: Bool
  }

  package var metricsSnapshot: MetricsSnapshot {
    values.withLock {
      MetricsSnapshot(
        restarts: $0.restarts, scrapes: $0.scrapes, scrapeFailures: $0.scrapeFailures,
        startupDuration: $0.startupDuration, proxyRunning: $0.runningGeneration != nil)
    }
  }
}
