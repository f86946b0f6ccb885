package import PilotfishKit

/// The one error type of pod injection.
///
/// Invariant: `message` names what is wrong and where, for an operator reading a rejected admission:
/// the annotation and its value (`annotation traffic.sidecar.istio.io/excludeOutboundIPRanges:
/// "10.0.0.0/33" is not a CIDR`) or the field of the object. Equality ignores `cause`.
package typealias InjectionError = DomainError<InjectionErrorCode>

package enum InjectionErrorCode: String, DomainErrorCode {
  /// An annotation that steers injection has a value that cannot be used.
  case invalidAnnotation
  /// The object is not a pod or pod template that can be injected.
  case invalidObject

  package static func describe(_ message: String, cause: any Error) -> String { "\(message) (\(cause))" }
}

extension InjectionError {
  /// `annotation <name>: "<value>" <problem>`.
  static func annotation(_ name: String, _ value: String, _ problem: String) -> InjectionError {
    InjectionError(.invalidAnnotation, "annotation \(name): \(quoted(value)) \(problem)")
  }

  /// A value in double quotes with `"`, `\` and control characters escaped.
  static func quoted(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default:
        if scalar.value < 0x20 || scalar.value == 0x7F {
          out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
}
