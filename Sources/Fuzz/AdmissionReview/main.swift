// libFuzzer target: the injector webhook's AdmissionReview handling (hack/fuzz.sh builds and runs it):
// `AdmissionReviewer.review` decodes the body, checks apiVersion/kind/request, injects the pod (annotations,
// probes, ports, resources …) and diffs it into a JSON Patch; the answer is serialized as the webhook
// writes it. It must always answer, never trap.
//
// Input: the request body. A NUL byte splits off the request path (`/inject/cluster/c1/net/n1` …).
internal import Injector

let reviewer = AdmissionReviewer(settings: InjectorSettings())

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzAdmissionReview(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  let data = UnsafeBufferPointer(start: pointer, count: count)
  var body = Array(data)
  var path = "/inject"
  if let nul = data.firstIndex(of: 0) {
    body = Array(data[..<nul])
    path = String(decoding: data[(nul + 1)...], as: UTF8.self)
  }
  let (response, _) = reviewer.review(body: body, path: path)
  _ = response.jsonText
  return 0
}
