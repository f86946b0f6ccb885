#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Runs the proxy as uid/gid 1337 through a trampoline: the agent starts its own executable
/// (`pilotfish __exec-as <uid> <gid> <binary> <args...>`), which drops to the ids and `execv`s the proxy — same
/// pid, exact argv. Why not swift-subprocess's `PlatformOptions.userID/groupID`: 1.0.2 forks with a raw
/// `clone3` and then calls glibc's `setgroups`/`setgid`/`setuid`, whose all-threads broadcast (`__nptl_setxid`)
/// waits forever on the parent's threads that the child does not have (seen as a hung child in the tests).
/// A freshly exec'd, single-threaded process has no such problem.
package enum PrivilegeDrop {
  package static let subcommand = "__exec-as"

  /// The trampoline's command line for `binary arguments` as `uid`/`gid`.
  package static func trampolineArguments(uid: UInt32, gid: UInt32, binary: String, arguments: [String])
    -> [String]
  {
    [subcommand, String(uid), String(gid), binary] + arguments
  }

  /// Drops to `gid` (also the only supplementary group) and `uid`, then replaces the process with `binary`.
  /// Returns only on failure, with the reason.
  package static func exec(uid: UInt32, gid: UInt32, binary: String, arguments: [String]) -> String {
    var groups = [gid_t(gid)]
    if setgroups(1, &groups) != 0 { return "setgroups(\(gid)): \(String(cString: strerror(errno)))" }
    if setgid(gid_t(gid)) != 0 { return "setgid(\(gid)): \(String(cString: strerror(errno)))" }
    if setuid(uid_t(uid)) != 0 { return "setuid(\(uid)): \(String(cString: strerror(errno)))" }
    let argv = ([binary] + arguments).map { strdup($0) } + [nil]
    execv(binary, argv)
    return "exec \(binary): \(String(cString: strerror(errno)))"
  }
}
