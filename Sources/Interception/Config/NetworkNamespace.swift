internal import CNetfilter
internal import Glibc

/// Moves the process into another network namespace (`--network-namespace`).
///
/// Namespace membership is per thread on Linux and new threads inherit it from the thread that creates them,
/// so this must run on the main thread before any other thread exists: then every thread the process
/// starts later (event loops, the concurrency pool) lives in the namespace too.
package enum NetworkNamespace {
  /// `name` is a name under /var/run/netns (as `ip netns` makes them) or a path such as /proc/PID/ns/net.
  package static func enter(_ name: String) throws(InterceptionError) {
    let path = name.hasPrefix("/") ? name : "/var/run/netns/\(name)"
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let reason = String(cString: strerror(errno))
      throw InterceptionError(
        .invalidArgument, "invalid value \"\(name)\" for --network-namespace: \(path): \(reason)")
    }
    defer { close(fd) }
    guard pf_setns_net(fd) == 0 else {
      let reason = String(cString: strerror(errno))
      throw InterceptionError(
        .unsupported, "cannot enter network namespace \(path): \(reason) (needs CAP_SYS_ADMIN)")
    }
  }
}
