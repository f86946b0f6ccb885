internal import NIOCore
internal import ProxyCore
internal import ProxyEngine

/// An upstream HTTP/1.1 connection a pool can hold while it is idle.
protocol PooledHTTPUpstream: AnyObject {
  var host: UpstreamHost { get }
  var cluster: UpstreamCluster { get }
  /// Idle, open and allowed to serve another request.
  var isReusable: Bool { get }
  func close()
}

/// The HTTP/1.1 connection pools of one worker (an event loop, or a reactor): per (cluster, host) a LIFO
/// stack of idle keep-alive connections, per cluster the cached HTTP stats, and the worker's request-id
/// generator. Only ever touched on its worker, so it takes no lock.
final class HTTPUpstreamPool<Upstream: PooledHTTPUpstream> {
  let requestIDs = RequestIDGenerator()
  private var idle: [ObjectIdentifier: IdleStack] = [:]
  private var clusters: [ObjectIdentifier: HTTPClusterState] = [:]

  /// The idle connections to one host, most recently used last. A class, so pushing and popping
  /// mutate its array in place without going through the dictionary.
  private final class IdleStack {
    var connections: [Upstream] = []
  }

  init() {}

  /// The worker-local state of a cluster (stats cache, idle timeout), created on first use.
  func state(for cluster: UpstreamCluster) -> HTTPClusterState {
    let key = ObjectIdentifier(cluster)
    if let state = clusters[key] { return state }
    let state = HTTPClusterState(cluster: cluster)
    clusters[key] = state
    return state
  }

  /// The most recently used idle connection to `host`, if any is still open.
  func acquire(host: UpstreamHost, cluster: UpstreamCluster) -> Upstream? {
    guard let stack = idle[ObjectIdentifier(host)] else { return nil }
    while let connection = stack.connections.popLast() {
      if connection.isReusable && connection.cluster === cluster { return connection }
      connection.close()
    }
    return nil
  }

  /// Puts a connection whose response completed back on its host's stack.
  func release(_ connection: Upstream) {
    let key = ObjectIdentifier(connection.host)
    if let stack = idle[key] {
      stack.connections.append(connection)
    } else {
      let stack = IdleStack()
      stack.connections.append(connection)
      idle[key] = stack
    }
  }

  /// Forgets a pooled connection that closed or timed out; an emptied stack is dropped.
  func remove(_ connection: Upstream) {
    let key = ObjectIdentifier(connection.host)
    guard let stack = idle[key] else { return }
    if let index = stack.connections.firstIndex(where: { $0 === connection }) {
      stack.connections.remove(at: index)
    }
    if stack.connections.isEmpty { idle[key] = nil }
  }

  /// Idle connections to `host` (for tests and /clusters).
  func idleCount(host: UpstreamHost) -> Int { idle[ObjectIdentifier(host)]?.connections.count ?? 0 }
}

/// Finds the pool of the current reactor worker: the identity the workers key their pools by. Every HTTP
/// connection manager built through the filter registry shares one, so listeners reuse each other's upstream
/// connections (one pool per worker, as in Envoy).
package final class HTTPUpstreamPoolDirectory: Sendable {
  package init() {}

  /// The pool of `reactor` (on its thread).
  func pool(on reactor: Reactor) -> HTTPUpstreamPool<HTTPUpstreamConnection> {
    reactor.local(for: self) { HTTPUpstreamPool<HTTPUpstreamConnection>() }
  }
}

/// One cluster's HTTP view on one worker: `cluster.<name>.upstream_rq_*` counters (the dynamic
/// per-code ones cached in a dictionary, so the store's lock is taken once per code per worker), and the
/// pooled-connection idle timeout from the cluster's `HttpProtocolOptions`.
final class HTTPClusterState {
  let cluster: UpstreamCluster
  let rqTotal: Counter
  let rqActive: Gauge
  let rqCompleted: Counter
  let rqTimeout: Counter
  let rqPendingTotal: Counter
  let rqPendingOverflow: Counter
  let rqPendingActive: Gauge
  let rqOverflow: Counter
  let rqRxReset: Counter
  let rqTxReset: Counter
  let rqTime: Histogram
  let cxHTTP1Total: Counter
  let byClass: [Counter]
  private var byCode: [Int: Counter] = [:]
  /// Idle pooled connections are closed after this (the cluster's `HttpProtocolOptions`); nil = never.
  let idleTimeout: TimeAmount?

  init(cluster: UpstreamCluster) {
    self.cluster = cluster
    let scope = cluster.stats.scope
    rqTotal = scope.counter("upstream_rq_total")
    rqActive = scope.gauge("upstream_rq_active")
    rqCompleted = scope.counter("upstream_rq_completed")
    rqTimeout = scope.counter("upstream_rq_timeout")
    rqPendingTotal = scope.counter("upstream_rq_pending_total")
    rqPendingOverflow = scope.counter("upstream_rq_pending_overflow")
    rqPendingActive = scope.gauge("upstream_rq_pending_active")
    rqOverflow = scope.counter("upstream_rq_overflow")
    rqRxReset = scope.counter("upstream_rq_rx_reset")
    rqTxReset = scope.counter("upstream_rq_tx_reset")
    rqTime = scope.histogram("upstream_rq_time")
    cxHTTP1Total = scope.counter("upstream_cx_http1_total")
    byClass = (1...5).map { scope.counter("upstream_rq_\($0)xx") }
    idleTimeout = cluster.config.upstreamHTTPIdleTimeout
  }

  /// Counts a response status: `upstream_rq_<code>` and `upstream_rq_<N>xx`.
  func countResponse(status: Int) {
    let cls = status / 100
    if cls >= 1 && cls <= 5 { byClass[cls - 1].inc() }
    if let counter = byCode[status] {
      counter.inc()
    } else {
      let counter = cluster.stats.scope.counter("upstream_rq_\(status)")
      byCode[status] = counter
      counter.inc()
    }
  }

}
