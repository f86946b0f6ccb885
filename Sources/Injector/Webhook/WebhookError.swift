/// Why the webhook server cannot start or serve: what is wrong and with which file or address.
///
/// Equality compares the code and the message and ignores the cause.
package struct WebhookError: Error, Sendable, Equatable, CustomStringConvertible {
  package enum Code: String, Sendable, Equatable {
    /// The serving certificate or key cannot be read or do not form a usable TLS identity.
    case certificate
    /// The listening socket cannot be opened.
    case bind
  }

  package var code: Code
  package var message: String
  package var cause: (any Error)?

  package init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause
  }

  package var description: String {
    cause.map { "\(message): \($0)" } ?? message
  }

  package static func == (lhs: WebhookError, rhs: WebhookError) -> Bool {
    lhs.code == rhs.code && lhs.message == rhs.message
  }
}
