package import PilotfishKit

/// Why the webhook server cannot start or serve: what is wrong and with which file or address.
///
/// Equality compares the code and the message and ignores the cause.
package typealias WebhookError = DomainError<WebhookErrorCode>

package enum WebhookErrorCode: String, DomainErrorCode {
  /// The serving certificate or key cannot be read or do not form a usable TLS identity.
  case certificate
  /// The listening socket cannot be opened.
  case bind
}
