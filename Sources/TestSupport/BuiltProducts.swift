import Foundation

/// The path of this package's built executable `name` for tests that run it as a process: next to the test
/// bundle (as `swift test` lays products out), else in `<packageRoot>/.build/debug`.
package func builtProduct(_ name: String, packageRoot: String) throws -> String {
  var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
  directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
  directories.append(URL(fileURLWithPath: packageRoot).appendingPathComponent(".build/debug"))
  for directory in directories {
    let candidate = directory.appendingPathComponent(name)
    if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
  }
  throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(name) next to the test bundle"])
}
