/// The `cluster.<name>.` stats the L4 core maintains, looked up once per cluster.
package struct ClusterStats: Sendable {
  package let scope: StatsScope
  package let cxTotal: Counter
  package let cxActive: Gauge
  package let cxConnectFail: Counter
  package let cxConnectTimeout: Counter
  package let cxOverflow: Counter
  package let cxNoneHealthy: Counter
  package let cxRxBytesTotal: Counter
  package let cxTxBytesTotal: Counter
  package let cxDestroy: Counter
  package let cxDestroyLocal: Counter
  package let cxDestroyRemote: Counter
  package let cxConnectMs: Histogram
  package let cxLengthMs: Histogram
  package let bindErrors: Counter
  package let membershipTotal: Gauge
  package let membershipHealthy: Gauge
  package let membershipDegraded: Gauge
  package let membershipExcluded: Gauge
  package let membershipChange: Counter
  package let updateAttempt: Counter
  package let updateSuccess: Counter
  package let updateFailure: Counter
  package let updateEmpty: Counter
  package let maxHostWeight: Gauge
  package let cxOpenDefault: Gauge
  package let remainingCxDefault: Gauge

  init(store: StatsStore, statName: String) {
    let scope = store.scope("cluster.\(statName)")
    self.scope = scope
    cxTotal = scope.counter("upstream_cx_total")
    cxActive = scope.gauge("upstream_cx_active")
    cxConnectFail = scope.counter("upstream_cx_connect_fail")
    cxConnectTimeout = scope.counter("upstream_cx_connect_timeout")
    cxOverflow = scope.counter("upstream_cx_overflow")
    cxNoneHealthy = scope.counter("upstream_cx_none_healthy")
    cxRxBytesTotal = scope.counter("upstream_cx_rx_bytes_total")
    cxTxBytesTotal = scope.counter("upstream_cx_tx_bytes_total")
    cxDestroy = scope.counter("upstream_cx_destroy")
    cxDestroyLocal = scope.counter("upstream_cx_destroy_local")
    cxDestroyRemote = scope.counter("upstream_cx_destroy_remote")
    cxConnectMs = scope.histogram("upstream_cx_connect_ms")
    cxLengthMs = scope.histogram("upstream_cx_length_ms")
    bindErrors = scope.counter("bind_errors")
    membershipTotal = scope.gauge("membership_total")
    membershipHealthy = scope.gauge("membership_healthy")
    membershipDegraded = scope.gauge("membership_degraded")
    membershipExcluded = scope.gauge("membership_excluded")
    membershipChange = scope.counter("membership_change")
    updateAttempt = scope.counter("update_attempt")
    updateSuccess = scope.counter("update_success")
    updateFailure = scope.counter("update_failure")
    updateEmpty = scope.counter("update_empty")
    maxHostWeight = scope.gauge("max_host_weight")
    cxOpenDefault = scope.gauge("circuit_breakers.default.cx_open")
    remainingCxDefault = scope.gauge("circuit_breakers.default.remaining_cx")
  }
}
