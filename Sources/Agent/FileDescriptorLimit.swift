#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// RLIMIT_NOFILE: the agent raises its soft limit to the hard limit at start (as pilot-agent does), so it and
/// the proxy it starts (which inherits the limit) are not held to a low default such as 1024 descriptors.
package enum FileDescriptorLimit {
  /// Raises the soft limit to the hard one; returns the limits after the attempt, and the error if the raise
  /// failed (the limits are then unchanged).
  package static func raise() -> (soft: UInt64, hard: UInt64, error: String?) {
    #if os(Linux)
      let resource = Int32(RLIMIT_NOFILE.rawValue)
    #else
      let resource = RLIMIT_NOFILE
    #endif
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else {
      return (0, 0, "getrlimit(RLIMIT_NOFILE): \(String(cString: strerror(errno)))")
    }
    guard limit.rlim_cur < limit.rlim_max else { return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max), nil) }
    var raised = limit
    raised.rlim_cur = limit.rlim_max
    if setrlimit(resource, &raised) != 0 {
      return (
        UInt64(limit.rlim_cur), UInt64(limit.rlim_max),
        "setrlimit(RLIMIT_NOFILE): \(String(cString: strerror(errno)))"
      )
    }
    return (UInt64(raised.rlim_cur), UInt64(raised.rlim_max), nil)
  }
}
