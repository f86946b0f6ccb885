#if canImport(Darwin)
  internal import Darwin
#elseif canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#endif

/// Number spellings of Envoy's admin output: `{}` (fmt's shortest round-trip form), `%g` and `%.32g`.
enum StatsNumberFormat {
  /// fmt's `{}` for a double: the shortest text that reads back to the same value, no trailing `.0`,
  /// `nan`/`inf` spelled as fmt spells them.
  static func shortest(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    var text = value.description
    if text.hasSuffix(".0") { text.removeLast(2) }
    return text
  }

  /// printf's `%g` (six significant digits), as absl's `StrFormat("%g")`.
  static func g(_ value: Double) -> String { printf("%g", value) }

  /// printf's `%.32g`, as Envoy prints Prometheus `le` bounds and `_sum`.
  static func g32(_ value: Double) -> String { printf("%.32g", value) }

  private static func printf(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    let written = withVaList([value]) { args in
      buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, args) }
    }
    guard written >= 0 else { return shortest(value) }
    if Int(written) >= buffer.count {
      buffer = [CChar](repeating: 0, count: Int(written) + 1)
      _ = withVaList([value]) { args in
        buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, args) }
      }
    }
    return String(decoding: buffer.prefix(Int(written)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
