// libFuzzer target: `pilotfish proxy sidecar --pod-metadata pod.json` (hack/fuzz.sh builds and runs it):
// `SidecarSettings.resolve` reads the pod file as the agent does and builds everything from it: identity,
// owner, labels and annotations, the layered ProxyConfig (the `proxy.istio.io/config` annotation in JSON or
// YAML, its durations and proxyMetadata), the bootstrap generator, the proxy's command line, app probers
// (ISTIO_KUBE_APP_PROBERS), Prometheus scrape targets, identity and istiod settings; then the bootstrap
// JSON is generated. Any outcome but settings or a thrown error is a finding.
//
// Input: the pod JSON. A NUL byte splits off a PROXY_CONFIG value (JSON or YAML) for the environment.
internal import Agent
internal import Foundation

/// A scratch root for the pod file (the process is one fuzzing worker; the pid keeps workers apart).
let root = NSTemporaryDirectory() + "/pilotfish-fuzz-pod-\(getpid())"
let podPath = root + "/pod.json"
let prepared: Void = {
  try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
}()

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzPodMetadata(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  _ = prepared
  let data = UnsafeBufferPointer(start: pointer, count: count)
  var environment = ["POD_NAMESPACE": "fuzz", "INSTANCE_IP": "10.0.0.1"]
  let json: Data
  if let nul = data.firstIndex(of: 0) {
    json = Data(data[..<nul])
    environment["PROXY_CONFIG"] = String(decoding: data[(nul + 1)...], as: UTF8.self)
  } else {
    json = Data(data)
  }
  guard FileManager.default.createFile(atPath: podPath, contents: json) else {
    fatalError("cannot write \(podPath)")
  }
  var options = SidecarOptions(environment: environment)
  options.root = root
  options.podMetadataPath = podPath
  options.binaryPath = "/bin/true"
  do {
    let settings = try SidecarSettings.resolve(options)
    _ = try settings.generator.json()
  } catch {
    _ = "\(error)"
  }
  return 0
}
