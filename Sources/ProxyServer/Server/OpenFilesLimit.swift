#if canImport(Glibc)
  internal import Glibc
#endif

/// `RLIMIT_NOFILE` at start: every proxied connection holds two descriptors, and the soft limit a
/// container inherits (often 1024) is far below what the proxy may need. Raised to the hard limit, as
/// HAProxy raises it from its maxconn; the agent and the container runtime decide the hard limit.
enum OpenFilesLimit {
  /// Raises the soft limit to the hard limit. Returns (before, after) soft limits, or nil when the limit
  /// cannot be read.
  static func raiseToHard() -> (before: UInt64, after: UInt64)? {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
    let before = UInt64(limit.rlim_cur)
    guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
    limit.rlim_cur = limit.rlim_max
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (before, before) }
    return (before, UInt64(limit.rlim_max))
  }
}
