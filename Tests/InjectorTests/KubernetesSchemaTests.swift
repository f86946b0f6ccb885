import Foundation
import PilotfishKit
import TestSupport
import Testing

@testable import Injector

/// Every injected golden output must be a valid Kubernetes object according to a third-party validator,
/// `kubernetes-validate` (PyPI), in strict mode (no unknown fields) against the schemas of a Kubernetes
/// release that has native sidecars. Without the validator the test is skipped, unless `CI=true`, where
/// its absence is a failure.
@Suite("Kubernetes schema of injected pods")
struct KubernetesSchemaTests {
  /// The Kubernetes versions checked: the oldest with `restartPolicy` on init containers that we support,
  /// and the first where native sidecars are on by default.
  static let versions = ["1.30.0", "1.33.0"]

  static let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
  static let inCI = TestEnvironment.mandatory
  static let validatorAvailable = run([python, "-c", "import kubernetes_validate"]).status == 0

  @Test("injected goldens pass kubernetes-validate --strict", .enabled(if: validatorAvailable || inCI))
  func injectedObjectsAreValid() throws {
    guard Self.validatorAvailable else {
      Issue.record(
        "CI=true but the Python module kubernetes_validate is missing: pip install 'kubernetes-validate==1.37.0'"
      )
      return
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pilotfish-schema-\(ProcessInfo.processInfo.processIdentifier)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }

    var files: [String] = []
    for golden in InjectionGoldenCase.all {
      guard case .injected(let object) = try golden.inject(golden.input()) else { continue }
      let file = directory.appendingPathComponent("\(golden.name).yaml")
      try InjectionGoldenYAML.text(object).write(to: file, atomically: true, encoding: .utf8)
      files.append(file.path)
    }
    #expect(files.count >= 10)

    for version in Self.versions {
      let result = Self.run(
        [Self.python, "-m", "kubernetes_validate", "--kubernetes-version", version, "--strict", "--quiet"]
          + files)
      // `--quiet` prints only problems; a missing schema is only a WARN with status 0, so any output fails.
      // (Without `--quiet` the validator trips over pods that have generateName but no name.)
      #expect(
        result.status == 0 && result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
        "kubernetes-validate \(version) rejected an injected object:\n\(result.output)")
    }
  }

  @Test("the validator rejects what it should", .enabled(if: validatorAvailable))
  func validatorRejectsUnknownFields() throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pilotfish-schema-bad-\(ProcessInfo.processInfo.processIdentifier).yaml")
    defer { try? FileManager.default.removeItem(at: file) }
    let bad: JSONValue = [
      "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "bad"],
      "spec": ["containers": [["name": "a", "image": "a", "restartPolicy": "Sometimes", "bogus": true]]],
    ]
    try InjectionGoldenYAML.text(bad).write(to: file, atomically: true, encoding: .utf8)
    let result = Self.run([
      Self.python, "-m", "kubernetes_validate", "-k", "1.30.0", "--strict", "--quiet", file.path,
    ])
    #expect(result.status != 0)
    #expect(result.output.contains("bogus"))
  }

  /// Runs a command; its exit status and combined output.
  static func run(_ arguments: [String]) -> (status: Int32, output: String) {
    do {
      let child = try ChildProcess.run("/usr/bin/env", arguments, timeout: .seconds(120))
      return (child.exitStatus ?? -1, child.stdoutText + child.stderrText)
    } catch {
      return (127, "\(error)")
    }
  }
}
