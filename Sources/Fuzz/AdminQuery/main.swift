// libFuzzer target: the proxy's admin API behind its HTTP server (hack/fuzz.sh builds and runs it): the
// request target split into path and query with percent-decoding, then answered by `AdminAPI` for a
// proxy built from a small static bootstrap (never started): /stats filters (regexes) and formats,
// /config_dump's resource, mask and name_regex, /logging's levels and paths, /clusters, /listeners, …
// Any outcome but a response is a finding.
//
// Input: byte 0 picks the method (bit 0: POST); the rest is the request target (`/stats?filter=…`).
internal import Logging
internal import ProxyCore

@testable import ProxyServer

let bootstrapJSON = """
  {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
   "node": {"id": "sidecar~10.0.0.1~fuzz.default~default.svc.cluster.local", "cluster": "fuzz"},
   "static_resources": {
     "clusters": [{"name": "backend", "type": "STATIC", "connect_timeout": "1s",
       "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [{"endpoint": {
         "address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}}}]}]}}],
     "listeners": [{"name": "tcp", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
         "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
         "stat_prefix": "tcp", "cluster": "backend"}}]}]}]}}
  """

let api: AdminAPI = {
  do {
    let bootstrap = try BootstrapLoader.decode(
      bootstrapJSON, format: .json, source: "fuzz.json", allowUnknownFields: false
    ).bootstrap
    var options = ProxyOptions()
    options.concurrency = 1
    let server = try ProxyServer(
      options: options, bootstrap: bootstrap, logLevels: LogLevelControl(level: .critical),
      logHandler: { _ in SwiftLogNoOpLogHandler() })
    return AdminAPI(server: server)
  } catch {
    fatalError("the fuzz bootstrap does not load: \(error)")
  }
}()

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzAdminQuery(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  guard count > 0 else { return 0 }
  let data = UnsafeBufferPointer(start: pointer, count: count)
  let method = data[0] & 1 == 0 ? "GET" : "POST"
  let uri = String(decoding: data[1...], as: UTF8.self)
  let request = AdminRequest(method: method, uri: uri, body: "")
  // Shutting down and draining would end the fuzzing process's proxy; everything else is answered.
  if request.path == "/quitquitquit" || request.path == "/healthcheck/fail"
    || request.path == "/drain_listeners"
  {
    return 0
  }
  let response = api.handle(request)
  _ = response.body.utf8.count
  return 0
}
