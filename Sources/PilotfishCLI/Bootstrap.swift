import Agent
import ArgumentParser
import Foundation

/// `pilotfish bootstrap`: prints (or writes) the Envoy bootstrap the agent would generate for this pod.
struct Bootstrap: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bootstrap",
    abstract: "Print the Envoy bootstrap (proto3 JSON) the agent generates for this pod.",
    discussion: """
      The pod comes from --pod-metadata (a Kubernetes Pod object as JSON), or from the environment \
      (POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, ISTIO_META_*, PROXY_CONFIG, ...) and the \
      downward-API files ./etc/istio/pod/labels and ./etc/istio/pod/annotations. Exit codes: 0 success, \
      1 error (the message names the variable, file or annotation at fault).
      """
  )

  @Option(
    name: .customLong("pod-metadata"),
    help: "A Kubernetes Pod object (JSON) to use instead of the environment.")
  var podMetadata: String?
  @Option(name: .customLong("output"), help: "Write the bootstrap to this file instead of standard output.")
  var output: String?
  @Option(name: .customLong("meshConfig"), help: "Mesh config file, read only if it exists.")
  var meshConfig: String = "./etc/istio/config/mesh"
  @Option(
    name: .customLong("domain"),
    help: "DNS domain, the node id's last field (default <namespace>.svc.cluster.local).")
  var domain: String?
  @Flag(name: .customLong("sotw"), help: "Use state-of-the-world ADS (GRPC) instead of delta xDS.")
  var stateOfTheWorld = false
  @Flag(
    name: .customLong("no-control-plane"),
    help: "No istiod: include the empty mesh's sidecar listeners (15001, 15006) as static resources.")
  var noControlPlane = false

  func run() throws {
    let env = ProcessInfo.processInfo.environment
    do {
      var pod: PodMetadata
      if let podMetadata {
        pod = try PodMetadata.fromPodFile(path: podMetadata, environment: env, meshConfigPath: meshConfig)
      } else {
        pod = try PodMetadata.fromEnvironment(env, root: ".", meshConfigPath: meshConfig)
      }
      if let domain, !domain.isEmpty { pod.domain = domain }
      if noControlPlane { pod.proxyConfig.discoveryAddress = "" }
      let generator = try BootstrapGenerator(pod: pod, xdsMode: stateOfTheWorld ? .stateOfTheWorld : nil)
      let text = try generator.json()
      if let output {
        try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
      } else {
        print(text, terminator: "")
      }
    } catch let error as AgentError {
      throw BootstrapFailure(description: "pilotfish bootstrap: \(error)")
    }
  }
}

/// Printed as `Error: <description>`; exit code 1, without the usage text a ValidationError adds.
struct BootstrapFailure: Error, CustomStringConvertible {
  var description: String
}
