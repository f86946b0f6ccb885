internal import Foundation

#if canImport(Glibc)
  internal import Glibc
#endif

/// Which files an SDS client may have the agent read through `file-cert:<chain>~<key>` and `file-root:<ca>`.
///
/// Anyone who can reach the SDS socket names the paths, so the agent (which may run as root, and holds the
/// local CA's key) reads only from certificate directories the operator allowed:
/// - the pod's certificate mounts as Istio lays them out: `./etc/certs` (Istio's mounted workload and
///   DestinationRule client certificates), `./etc/istio` below the config directory's level (gateway and
///   egress certificate mounts, e.g. `/etc/istio/egressgateway-certs`),
///   `./var/run/secrets/workload-spiffe-credentials` and `./var/run/secrets/istio` (the mesh root);
/// - `OUTPUT_CERTS`, where the agent itself writes the workload certificate;
/// - the OS CA bundles of `file-root:system` (those files only);
/// - more directories from `PILOTFISH_SDS_ALLOWED_DIRS` (colon-separated).
/// Paths are compared after resolving symbolic links and `..` (Kubernetes secret volumes are symlinks
/// inside the mount), and the local CA's directory is refused even when it lies inside an allowed one.
/// Istio's agent serves any path its process can read; this is stricter on purpose.
package struct SecretFileAccess: Sendable, Equatable {
  package var allowedDirectories: [String]
  package var allowedFiles: [String]
  /// Never served, even inside an allowed directory (the local CA's state).
  package var forbiddenDirectories: [String]

  package init(allowedDirectories: [String], allowedFiles: [String] = [], forbiddenDirectories: [String] = []) {
    self.allowedDirectories = allowedDirectories
    self.allowedFiles = allowedFiles
    self.forbiddenDirectories = forbiddenDirectories
  }

  /// Only the OS CA bundles.
  package static let systemRootsOnly = SecretFileAccess(
    allowedDirectories: [], allowedFiles: SecretName.systemRootCandidates)

  /// The environment variable that adds directories.
  package static let environmentVariable = "PILOTFISH_SDS_ALLOWED_DIRS"

  /// The directories of the list above, under the pod root `root`.
  package static func standard(
    root: String, outputDirectory: String?, localCADirectory: String?, environment: [String: String]
  ) -> SecretFileAccess {
    var directories = [
      "./etc/certs", "./etc/istio", "./var/run/secrets/workload-spiffe-credentials", "./var/run/secrets/istio",
    ].map { PodMetadata.join(root, $0) }
    if let outputDirectory { directories.append(outputDirectory) }
    for entry in (environment[environmentVariable] ?? "").split(separator: ":") where !entry.isEmpty {
      directories.append(PodMetadata.join(root, String(entry)))
    }
    return SecretFileAccess(
      allowedDirectories: directories, allowedFiles: SecretName.systemRootCandidates,
      forbiddenDirectories: localCADirectory.map { [$0] } ?? [])
  }

  /// Throws an SDS error naming the resource and the path unless `path` resolves inside an allowed
  /// directory (or is an allowed file) and outside the forbidden ones.
  package func check(_ path: String, resource: SecretName) throws(AgentError) {
    guard let resolved = Self.resolve(path) else {
      throw AgentError(.identity, "\(resource): \(path): cannot read (\(String(cString: strerror(errno))))")
    }
    func inside(_ directory: String) -> Bool {
      guard let base = Self.resolve(directory) else { return false }
      return resolved.hasPrefix(base == "/" ? "/" : base + "/")
    }
    let allowed =
      allowedFiles.contains { Self.resolve($0) == resolved } || allowedDirectories.contains(where: inside)
    guard allowed, !forbiddenDirectories.contains(where: inside) else {
      throw AgentError(
        .identity,
        "\(resource): \(path) is outside the certificate directories the agent serves files from "
          + "(\(allowedDirectories.joined(separator: ", "))); an operator can add one with "
          + "\(Self.environmentVariable)")
    }
  }

  /// `realpath`: absolute, symbolic links and `..` resolved; nil if it does not exist.
  private static func resolve(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }
}
