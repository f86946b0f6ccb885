#if canImport(Glibc)
  internal import Glibc
#endif

/// Milliseconds on CLOCK_MONOTONIC (vDSO: no system call), the reactor's time base.
package enum MonotonicClock {
  package static func milliseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) &* 1000 &+ Int64(spec.tv_nsec) / 1_000_000
  }

  package static func nanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
  }
}
