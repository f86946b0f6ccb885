import Foundation
import TestSupport
import Testing

/// The official Envoy protos, as Python classes from PyPI's `xds-protos`, driven through
/// `OfficialPeerScript` in a temporary directory. Tests that need it are skipped when python3 cannot import
/// it, except with `CI=true`, where they fail instead so that a skip cannot hide a missing install.
struct OfficialPeer {
  /// True where `CI=true`: a missing peer is a failure there, not a skip.
  static let isCI = TestEnvironment.mandatory
  /// python3 imports the official protos.
  static let hasOfficialProtos = probe([])
  /// ...and grpcio-tools' protoc, for comparing the .proto files themselves.
  static let hasProtoCompiler = probe(["schema"])

  static let missingProtos = "python3 cannot import xds-protos: pip install xds-protos"
  static let missingCompiler =
    "python3 cannot import xds-protos and grpcio-tools: pip install xds-protos grpcio-tools"

  /// The repository's root, found from this file's path (Tests/EnvoyAPITests/OfficialPeer.swift).
  static let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// A fresh directory holding the script and the files exchanged with it.
  let directory: URL

  init() throws {
    directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("envoyapi-peer-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try Data(OfficialPeerScript.source.utf8).write(to: directory.appendingPathComponent("official_peer.py"))
  }

  func removeDirectory() {
    try? FileManager.default.removeItem(at: directory)
  }

  func file(_ name: String) -> URL {
    directory.appendingPathComponent(name)
  }

  /// Runs `python3 official_peer.py ARGS...` and throws with its output when it fails.
  func run(_ arguments: [String]) throws {
    let (status, output) = try Self.python([file("official_peer.py").path] + arguments)
    guard status == 0 else {
      throw PeerError(
        description: "official_peer.py \(arguments.joined(separator: " ")) exited \(status):\n\(output)")
    }
  }

  func readJSON(_ name: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: file(name)))
  }

  struct PeerError: Error, CustomStringConvertible {
    var description: String
  }

  private static func probe(_ arguments: [String]) -> Bool {
    guard let peer = try? OfficialPeer() else { return false }
    defer { peer.removeDirectory() }
    return (try? peer.run(["probe"] + arguments)) != nil
  }

  private static func python(_ arguments: [String]) throws -> (Int32, String) {
    let child = try ChildProcess.run("/usr/bin/env", ["python3"] + arguments, timeout: .seconds(120))
    return (child.exitStatus ?? -1, "\(child.termination)\n" + child.stdoutText + child.stderrText)
  }
}
