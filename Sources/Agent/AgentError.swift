internal import Foundation
package import PilotfishKit

/// The agent's one error type: a code, a message that names the offending variable, file or annotation,
/// and an optional underlying cause. Equality ignores the cause so tests can compare errors.
package typealias AgentError = DomainError<AgentErrorCode>

package enum AgentErrorCode: DomainErrorCode {
  /// An environment variable holds a value that cannot be parsed.
  case invalidEnvironment
  /// A file is missing or unreadable, or its contents are malformed.
  case invalidFile
  /// A pod annotation holds a value that cannot be parsed.
  case invalidAnnotation
  /// The bootstrap could not be built or serialized.
  case bootstrap
  /// A command-line flag holds an unusable value (or flags contradict each other).
  case invalidFlag
  /// The supervised proxy could not be started, or kept exiting until the restart budget ran out.
  case proxy
  /// A server (status 15020, metrics 15090) could not listen.
  case server
  /// A local HTTP call (proxy admin, app probe, scrape) failed.
  case http
  /// Workload identity: certificate issuance, certificate files, the SDS server.
  case identity

  package static func describe(_ message: String, cause: any Error) -> String {
    // Foundation errors print their whole userInfo; keep the human part.
    let nsError = cause as NSError
    if nsError.domain == NSCocoaErrorDomain || nsError.domain == NSPOSIXErrorDomain {
      let detail = nsError.userInfo[NSDebugDescriptionErrorKey] as? String ?? nsError.localizedDescription
      return "\(message): \(detail)"
    }
    return "\(message): \(cause)"
  }
}
