#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Starts the proxy through a trampoline: the agent runs its own executable
/// (`pilotfish __exec-as --parent-pid <pid> [--uid <uid> --gid <gid>] <binary> <args...>`), which drops to the
/// ids when asked, arranges to die with the agent, and `execv`s the proxy — same pid, exact argv. Why not
/// swift-subprocess's `PlatformOptions.userID/groupID`: 1.0.2 forks with a raw `clone3` and then calls glibc's
/// `setgroups`/`setgid`/`setuid`, whose all-threads broadcast (`__nptl_setxid`) waits forever on the parent's
/// threads that the child does not have (seen as a hung child in the tests). A freshly exec'd,
/// single-threaded process has no such problem.
///
/// Dying with the agent: the trampoline sets `PR_SET_PDEATHSIG(SIGKILL)` after the id change (setuid/setgid
/// clear it) and immediately before `execv` (an exec that is not set-uid keeps it), then compares `getppid()`
/// with the agent's pid, so an agent that died before the `prctl` is noticed too. The signal fires when the
/// *thread* that forked the child exits. swift-subprocess 1.0.2 (`Thread.swift`, `runOnBackgroundThread`)
/// forks every child from one dedicated pthread it creates on first use and only joins in an `atexit`
/// handler, never from a Swift-concurrency pool thread; that thread lives as long as the agent, so the
/// proxy is not killed while the agent is alive (a test checks it survives agent idleness).
package enum PrivilegeDrop {
  package static let subcommand = "__exec-as"

  /// The trampoline's command line for `binary arguments`, as `uid`/`gid` when given, child of `parentPID`.
  package static func trampolineArguments(
    ids: (uid: UInt32, gid: UInt32)?, parentPID: Int32, binary: String, arguments: [String]
  ) -> [String] {
    var result = [subcommand, "--parent-pid", String(parentPID)]
    if let ids { result += ["--uid", String(ids.uid), "--gid", String(ids.gid)] }
    return result + [binary] + arguments
  }

  /// Drops to `gid` (also the only supplementary group) and `uid` when given, sets the parent-death signal,
  /// checks the parent is still `parentPID`, then replaces the process with `binary`. Returns only on
  /// failure, with the reason.
  package static func exec(
    ids: (uid: UInt32, gid: UInt32)?, parentPID: Int32, binary: String, arguments: [String]
  ) -> String {
    if let ids {
      let (uid, gid) = (ids.uid, ids.gid)
      var groups = [gid_t(gid)]
      if setgroups(1, &groups) != 0 { return "setgroups(\(gid)): \(String(cString: strerror(errno)))" }
      if setgid(gid_t(gid)) != 0 { return "setgid(\(gid)): \(String(cString: strerror(errno)))" }
      if setuid(uid_t(uid)) != 0 { return "setuid(\(uid)): \(String(cString: strerror(errno)))" }
    }
    #if os(Linux)
      if let error = setParentDeathSignal(SIGKILL) { return error }
    #endif
    guard getppid() == parentPID else {
      return "the agent (pid \(parentPID)) exited before the proxy started; not starting it as an orphan"
    }
    let argv = ([binary] + arguments).map { strdup($0) } + [nil]
    execv(binary, argv)
    return "exec \(binary): \(String(cString: strerror(errno)))"
  }

  #if os(Linux)
    /// `prctl(PR_SET_PDEATHSIG, signal)`. `prctl` is variadic in C, so Swift does not import it; it is called
    /// through its address with the two-integer prototype, which the Linux x86-64 and AArch64 calling
    /// conventions pass exactly like the variadic call.
    private static func setParentDeathSignal(_ signal: Int32) -> String? {
      typealias Prctl = @convention(c) (Int32, UInt) -> Int32
      let prSetPdeathsig: Int32 = 1  // <linux/prctl.h>
      guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "prctl") else {
        return "prctl not found"
      }
      let prctl = unsafeBitCast(symbol, to: Prctl.self)
      if prctl(prSetPdeathsig, UInt(signal)) != 0 {
        return "prctl(PR_SET_PDEATHSIG): \(String(cString: strerror(errno)))"
      }
      return nil
    }
  #endif

  /// Why `uid`/`gid` (with `gid` as the only group) cannot read `path`, or nil if the mode bits let it:
  /// every directory from `/` down must grant search (x) and the file read (r) to the owner, group or other
  /// class those ids fall in. uid 0 is not special-cased (the proxy never runs as root through this).
  package static func unreadableReason(path: String, uid: UInt32, gid: UInt32) -> String? {
    var absolute = path
    if !absolute.hasPrefix("/") {
      var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
      guard getcwd(&buffer, buffer.count) != nil else { return "cannot resolve the working directory" }
      absolute = String(cString: buffer) + "/" + path
    }
    let components = absolute.split(separator: "/").map(String.init).filter { $0 != "." }
    var current = ""
    for (index, component) in components.enumerated() {
      let isFile = index == components.count - 1
      let directory = current.isEmpty ? "/" : current
      var info = stat()
      guard stat(directory, &info) == 0 else {
        return "\(directory): \(String(cString: strerror(errno)))"
      }
      if !allows(info, uid: uid, gid: gid, bit: 0o1) {
        return "directory \(directory) (mode \(String(info.st_mode & 0o7777, radix: 8)), owner \(info.st_uid):"
          + "\(info.st_gid)) cannot be searched by uid \(uid)"
      }
      current += "/" + component
      if isFile {
        guard stat(current, &info) == 0 else { return "\(current): \(String(cString: strerror(errno)))" }
        if !allows(info, uid: uid, gid: gid, bit: 0o4) {
          return "file \(current) (mode \(String(info.st_mode & 0o7777, radix: 8)), owner \(info.st_uid):"
            + "\(info.st_gid)) cannot be read by uid \(uid)"
        }
      }
    }
    return nil
  }

  private static func allows(_ info: stat, uid: UInt32, gid: UInt32, bit: mode_t) -> Bool {
    let mode = info.st_mode
    if info.st_uid == uid { return mode & (bit << 6) != 0 }
    if info.st_gid == gid { return mode & (bit << 3) != 0 }
    return mode & bit != 0
  }
}
