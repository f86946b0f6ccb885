/// The code enum of one error domain (`AgentError.Code`, `InjectionError.Code` …). A domain may say how its
/// errors print their cause; by default `message: cause`.
package protocol DomainErrorCode: Hashable, Sendable {
  /// The text of an error of this domain that has a cause.
  static func describe(_ message: String, cause: any Error) -> String
}

extension DomainErrorCode {
  package static func describe(_ message: String, cause: any Error) -> String { "\(message): \(cause)" }
}

/// One error type per domain, written once: a code, a message for an operator (naming what is wrong and
/// where) and an optional underlying cause. Equality compares the code and the message and ignores the
/// cause, so tests can compare whole errors. Each domain names its own:
///
/// ```swift
/// package enum AgentErrorCode: DomainErrorCode { case invalidFile, … }
/// package typealias AgentError = DomainError<AgentErrorCode>
/// ```
///
/// Model: grpc-swift-2's `RuntimeError`.
package struct DomainError<DomainCode: DomainErrorCode>: Error, Sendable, Equatable, CustomStringConvertible {
  package typealias Code = DomainCode

  package var code: Code
  package var message: String
  package var cause: (any Error)?

  package init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause
  }

  package var description: String {
    guard let cause else { return message }
    return Code.describe(message, cause: cause)
  }

  package static func == (lhs: Self, rhs: Self) -> Bool {
    lhs.code == rhs.code && lhs.message == rhs.message
  }
}
