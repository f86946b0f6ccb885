internal import Foundation

#if canImport(Glibc)
  internal import Glibc
#endif

/// How the agent obtains the workload's certificate, decided once at start-up in Istio's order
/// (`secretcache.go`, `agent.go`): mounted files in `./etc/certs`, then the workload-spiffe-credentials
/// directory, then a CA — Istio's (CA_ADDR, default the discovery address) or, with no control plane,
/// Pilotfish's local CA.
package struct IdentitySettings: Sendable {
  package enum Provider: Sendable, Equatable {
    case files(chainPath: String, keyPath: String, rootPath: String)
    case istioCA(address: String)
    case localCA(directory: String)
  }

  package var provider: Provider
  package var identity: WorkloadIdentity
  package var socketPath: String
  package var policy: SecretRotationPolicy
  /// OUTPUT_CERTS: where issued certificates are also written.
  package var outputDirectory: String?
  package var environment: [String: String]
  package var root: String

  /// The files `file-cert:`/`file-root:` resources may be read from (see ``SecretFileAccess``).
  package var fileAccess: SecretFileAccess {
    var localCA: String?
    if case .localCA(let directory) = provider { localCA = directory }
    return .standard(
      root: root, outputDirectory: outputDirectory, localCADirectory: localCA, environment: environment)
  }

  /// The default directory of the local CA: shared by every agent on the machine run by the same user.
  package static func defaultLocalCADirectory(environment: [String: String]) -> String {
    if geteuid() == 0 { return "/var/lib/pilotfish/local-ca" }
    let state = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
      ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state"
    return state + "/pilotfish/local-ca"
  }

  package static func resolve(
    pod: PodMetadata, sdsSocketPath: String, root: String, localCADirectory: String?
  ) throws(AgentError) -> IdentitySettings {
    let env = pod.environment
    var policy = SecretRotationPolicy()
    if let text = env["SECRET_TTL"], !text.isEmpty {
      guard let ttl = GoDuration.parse(text), ttl > .zero else {
        throw AgentError(.invalidEnvironment, "SECRET_TTL: invalid duration \"\(text)\" (e.g. 24h; \(GoDuration.rangeHint))")
      }
      policy.ttl = ttl
    }
    if let text = env["SECRET_GRACE_PERIOD_RATIO"], !text.isEmpty {
      guard let ratio = Double(text), (0...1).contains(ratio) else {
        throw AgentError(
          .invalidEnvironment, "SECRET_GRACE_PERIOD_RATIO: expected a number between 0 and 1, got \"\(text)\"")
      }
      policy.gracePeriodRatio = ratio
    }
    let output = env["OUTPUT_CERTS"].flatMap { $0.isEmpty ? nil : PodMetadata.join(root, $0) }

    let provider: Provider
    let mounted = PodMetadata.join(root, "./etc/certs")
    let credentials = PodMetadata.join(root, "./var/run/secrets/workload-spiffe-credentials")
    func files(_ directory: String) -> Provider {
      .files(
        chainPath: directory + "/cert-chain.pem", keyPath: directory + "/key.pem",
        rootPath: directory + "/root-cert.pem")
    }
    func nonEmpty(_ directory: String) -> Bool {
      ["cert-chain.pem", "key.pem", "root-cert.pem"].allSatisfy {
        ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0))?[.size] as? Int ?? 0) > 0
      }
    }
    if nonEmpty(mounted), output.map({ Self.samePath($0, mounted) }) != true {
      provider = files(mounted)
    } else if nonEmpty(credentials) {
      provider = files(credentials)
    } else if let address = env["CA_ADDR"].flatMap({ $0.isEmpty ? nil : $0 }) {
      provider = .istioCA(address: address)
    } else if !pod.proxyConfig.discoveryAddress.isEmpty {
      provider = .istioCA(address: pod.proxyConfig.discoveryAddress)
    } else {
      let directory = localCADirectory.flatMap { $0.isEmpty ? nil : $0 }
        ?? env["PILOTFISH_LOCAL_CA_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        ?? defaultLocalCADirectory(environment: env)
      provider = .localCA(directory: directory)
    }
    return IdentitySettings(
      provider: provider,
      identity: WorkloadIdentity(
        trustDomain: pod.trustDomain.isEmpty ? "cluster.local" : pod.trustDomain,
        namespace: pod.namespace.isEmpty ? "default" : pod.namespace,
        // Kubernetes runs a pod without serviceAccountName as `default`.
        serviceAccount: pod.serviceAccount.isEmpty ? "default" : pod.serviceAccount),
      socketPath: PodMetadata.join(root, sdsSocketPath), policy: policy, outputDirectory: output,
      environment: env, root: root)
  }

  private static func samePath(_ a: String, _ b: String) -> Bool {
    URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
  }
}
