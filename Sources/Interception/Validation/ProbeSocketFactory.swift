internal import Glibc

/// Creates TCP sockets owned by a given uid/gid, the way iptables `-m owner` and nft
/// `meta skuid`/`meta skgid` see owners: the fsuid/fsgid of the thread that called socket(2).
///
/// Linux keeps credentials per thread at the syscall level. glibc's `setfsuid`/`setfsgid` are the
/// bare syscalls (unlike `setuid`, they are not broadcast to the other threads), so switching them
/// touches only the calling thread. Use a factory only on a thread dedicated to the probe: between
/// the switch and the restore, anything else that thread did would run with the probe's
/// credentials. Swift's Glibc module does not export these two functions, so they are looked up
/// with dlsym.
struct ProbeSocketFactory {
  private typealias SetFilesystemID = @convention(c) (UInt32) -> Int32

  private let setfsuid: SetFilesystemID
  private let setfsgid: SetFilesystemID

  init() throws(InterceptionError) {
    guard let process = dlopen(nil, RTLD_NOW) else {
      throw InterceptionError(.unsupported, "cannot open the process image to look up setfsuid")
    }
    // The symbols live in the C library, which stays loaded after the handle is released.
    defer { dlclose(process) }
    guard let uid = dlsym(process, "setfsuid"), let gid = dlsym(process, "setfsgid") else {
      throw InterceptionError(.unsupported, "the C library does not provide setfsuid/setfsgid")
    }
    setfsuid = unsafeBitCast(uid, to: SetFilesystemID.self)
    setfsgid = unsafeBitCast(gid, to: SetFilesystemID.self)
  }

  /// A non-blocking, close-on-exec TCP socket of `family` whose owner is `uid`/`gid`.
  ///
  /// Switches the calling thread's fsgid and fsuid, creates the socket, and switches both back
  /// before returning. Throws `.unsupported` when the process may not switch (no CAP_SETUID or
  /// CAP_SETGID), and `.validationFailed` when socket(2) fails.
  func makeSocket(family: IPFamily, uid: UInt32, gid: UInt32) throws(InterceptionError) -> Int32 {
    // The gid first: a root thread that switched its fsuid away first would still hold CAP_SETGID,
    // but the order keeps the restore symmetrical and obviously correct.
    let previousGID = UInt32(bitPattern: setfsgid(gid))
    defer { _ = setfsgid(previousGID) }
    // An invalid id changes nothing and returns the current value.
    guard UInt32(bitPattern: setfsgid(UInt32.max)) == gid else {
      throw InterceptionError(
        .unsupported,
        "cannot create a probe socket as gid \(gid): switching the fsgid needs CAP_SETGID")
    }
    let previousUID = UInt32(bitPattern: setfsuid(uid))
    defer { _ = setfsuid(previousUID) }
    guard UInt32(bitPattern: setfsuid(UInt32.max)) == uid else {
      throw InterceptionError(
        .unsupported,
        "cannot create a probe socket as uid \(uid): switching the fsuid needs CAP_SETUID")
    }
    let domain = family == .v4 ? AF_INET : AF_INET6
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    let descriptor = socket(domain, type, Int32(IPPROTO_TCP))
    guard descriptor >= 0 else {
      let reason = ProbeErrno.describe(errno)
      throw InterceptionError(.validationFailed, "cannot create an \(family) probe socket: \(reason)")
    }
    return descriptor
  }
}

/// Text for errno values, without the thread-unsafe `strerror`.
enum ProbeErrno {
  static func describe(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    // Swift's Glibc module imports the XSI variant, which fills the buffer and returns 0.
    guard strerror_r(code, &buffer, buffer.count) == 0 else { return "errno \(code)" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
