package import ProxyCore

/// `http.<stat_prefix>.` stats of one connection manager, looked up once when the filter is built.
package struct HTTPConnectionManagerStats: Sendable {
  package let cxTotal: Counter
  package let cxActive: Gauge
  package let cxHTTP1Total: Counter
  package let cxHTTP1Active: Gauge
  package let cxDestroy: Counter
  package let cxDestroyLocal: Counter
  package let cxDestroyRemote: Counter
  package let cxDrainClose: Counter
  package let cxIdleTimeout: Counter
  package let cxProtocolError: Counter
  package let cxRxBytesTotal: Counter
  package let cxTxBytesTotal: Counter
  package let cxLengthMs: Histogram
  package let rqTotal: Counter
  package let rqActive: Gauge
  package let rqHTTP1Total: Counter
  /// `downstream_rq_1xx` … `downstream_rq_5xx`, indexed by class − 1.
  package let rqByClass: [Counter]
  package let rqCompleted: Counter
  package let rqTime: Histogram
  package let rqTimeout: Counter
  package let rqIdleTimeout: Counter
  package let rqHeaderTimeout: Counter
  package let rqRxReset: Counter
  package let rqTxReset: Counter
  package let rqWebSocket: Counter
  package let noRoute: Counter
  package let noCluster: Counter
  package let rqDirectResponse: Counter
  package let rqRedirect: Counter
  package let rqTotalRouter: Counter

  package init(store: StatsStore, prefix: String) {
    let scope = store.scope("http.\(prefix)")
    cxTotal = scope.counter("downstream_cx_total")
    cxActive = scope.gauge("downstream_cx_active")
    cxHTTP1Total = scope.counter("downstream_cx_http1_total")
    cxHTTP1Active = scope.gauge("downstream_cx_http1_active")
    cxDestroy = scope.counter("downstream_cx_destroy")
    cxDestroyLocal = scope.counter("downstream_cx_destroy_local")
    cxDestroyRemote = scope.counter("downstream_cx_destroy_remote")
    cxDrainClose = scope.counter("downstream_cx_drain_close")
    cxIdleTimeout = scope.counter("downstream_cx_idle_timeout")
    cxProtocolError = scope.counter("downstream_cx_protocol_error")
    cxRxBytesTotal = scope.counter("downstream_cx_rx_bytes_total")
    cxTxBytesTotal = scope.counter("downstream_cx_tx_bytes_total")
    cxLengthMs = scope.histogram("downstream_cx_length_ms")
    rqTotal = scope.counter("downstream_rq_total")
    rqActive = scope.gauge("downstream_rq_active")
    rqHTTP1Total = scope.counter("downstream_rq_http1_total")
    rqByClass = (1...5).map { scope.counter("downstream_rq_\($0)xx") }
    rqCompleted = scope.counter("downstream_rq_completed")
    rqTime = scope.histogram("downstream_rq_time")
    rqTimeout = scope.counter("downstream_rq_timeout")
    rqIdleTimeout = scope.counter("downstream_rq_idle_timeout")
    rqHeaderTimeout = scope.counter("downstream_rq_header_timeout")
    rqRxReset = scope.counter("downstream_rq_rx_reset")
    rqTxReset = scope.counter("downstream_rq_tx_reset")
    rqWebSocket = scope.counter("downstream_rq_ws_on_non_ws_route")
    noRoute = scope.counter("no_route")
    noCluster = scope.counter("no_cluster")
    rqDirectResponse = scope.counter("rq_direct_response")
    rqRedirect = scope.counter("rq_redirect")
    rqTotalRouter = scope.counter("rq_total")
  }

  /// Counts a finished downstream response by class.
  @inline(__always)
  package func countResponse(status: Int) {
    let cls = status / 100
    if cls >= 1 && cls <= 5 { rqByClass[cls - 1].inc() }
  }
}
