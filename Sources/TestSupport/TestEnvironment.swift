package import Foundation

/// Whether tests that need root or an external tool (python3 modules, promtool, curl, openssl) must run:
/// `CI=true` (what `.ci/run` exports) or `PILOTFISH_PRIVILEGED_TESTS=1`. Then a missing tool or privilege
/// fails the test instead of skipping it, so a misconfigured runner cannot turn checks into silent skips.
package enum TestEnvironment {
  package static var mandatory: Bool {
    let environment = ProcessInfo.processInfo.environment
    return environment["CI"] == "true" || environment["PILOTFISH_PRIVILEGED_TESTS"] == "1"
  }
}
