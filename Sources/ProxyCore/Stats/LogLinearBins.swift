/// A log-linear histogram with two significant decimal digits per bin, the layout of Envoy's circllhist
/// (libcircllhist): a positive value `v = m × 10^e` with `m` in [10, 100) falls in the bin
/// `[⌊m⌋ × 10^e, (⌊m⌋ + 1) × 10^e)`; zero (and anything negative) falls in a zero-width bin at 0.
/// Quantiles interpolate linearly inside the bin holding the target rank, as `hist_approx_quantile` does,
/// so a single recorded 1 gives P0 = 1, P25 = 1.025, P100 = 1.1, the numbers Envoy prints.
struct LogLinearBins: Sendable, Equatable {
  struct Bin: Hashable, Comparable, Sendable {
    /// 0 for the zero bin, else 10...99.
    var mantissa: Int8
    var exponent: Int16

    static func < (a: Bin, b: Bin) -> Bool {
      if (a.mantissa == 0) != (b.mantissa == 0) { return a.mantissa == 0 }
      return (a.exponent, a.mantissa) < (b.exponent, b.mantissa)
    }

    var lower: Double {
      mantissa == 0
        ? 0
        : exponent >= 0
          ? Double(mantissa) * powerOfTen(Int(exponent)) : Double(mantissa) / powerOfTen(-Int(exponent))
    }
    var width: Double {
      mantissa == 0 ? 0 : exponent >= 0 ? powerOfTen(Int(exponent)) : 1 / powerOfTen(-Int(exponent))
    }
  }

  /// The bins seen so far, ascending, and their counts: a value finds its bin by binary search (no
  /// hashing on the request path) and quantiles walk them in order without sorting.
  private var bins: [Bin] = []
  private var counts: [UInt64] = []
  private(set) var total: UInt64 = 0

  var isEmpty: Bool { total == 0 }

  mutating func insert(_ value: Double) {
    add(Self.bin(for: value), count: 1)
  }

  mutating func merge(_ other: LogLinearBins) {
    for i in other.bins.indices { add(other.bins[i], count: other.counts[i]) }
  }

  private mutating func add(_ bin: Bin, count: UInt64) {
    var low = 0
    var high = bins.count
    while low < high {
      let mid = (low + high) / 2
      if bins[mid] < bin { low = mid + 1 } else { high = mid }
    }
    if low < bins.count && bins[low] == bin {
      counts[low] &+= count
    } else {
      bins.insert(bin, at: low)
      counts.insert(count, at: low)
    }
    total &+= count
  }

  /// Quantiles for `qs` (fractions in [0, 1], ascending); NaN for each when empty.
  func quantiles(_ qs: [Double]) -> [Double] {
    guard total > 0 else { return qs.map { _ in .nan } }
    var out: [Double] = []
    out.reserveCapacity(qs.count)
    var index = 0
    var below: UInt64 = 0
    var through = counts[0]
    for q in qs {
      let target = q * Double(total)
      while index < bins.count - 1 && Double(through) < target {
        index += 1
        below = through
        through += counts[index]
      }
      let bin = bins[index]
      let inBin = Double(through - below)
      let fraction = inBin > 0 ? min(max((target - Double(below)) / inBin, 0), 1) : 0
      out.append(bin.lower + fraction * bin.width)
    }
    return out
  }

  static func bin(for value: Double) -> Bin {
    guard value > 0, value.isFinite || value == .infinity else { return Bin(mantissa: 0, exponent: 0) }
    if value < 1e-127 { return Bin(mantissa: 0, exponent: 0) }
    if value >= 1e127 { return Bin(mantissa: 99, exponent: 125) }
    // Estimate the decimal exponent from the binary one, then settle it against exact powers of ten.
    var e = Int((Double(value.exponent) * 0.30102999566398120).rounded(.down)) - 1
    while scaled(value, by: e) >= 100 { e += 1 }
    while scaled(value, by: e) < 10 { e -= 1 }
    let m = min(max(Int(scaled(value, by: e).rounded(.down)), 10), 99)
    return Bin(mantissa: Int8(m), exponent: Int16(e))
  }

  /// `value / 10^e`, rounded once.
  private static func scaled(_ value: Double, by e: Int) -> Double {
    e >= 0 ? value / powerOfTen(e) : value * powerOfTen(-e)
  }
}

/// 10^n for n ≥ 0; exact up to 10^22.
func powerOfTen(_ n: Int) -> Double {
  var result = 1.0
  var base = 10.0
  var n = n
  while n > 0 {
    if n & 1 == 1 { result *= base }
    base *= base
    n >>= 1
  }
  return result
}
