#if canImport(Glibc)
  internal import Glibc
#endif

/// A system call of the data path failed: which call, on what, and errno.
package struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
  package var call: String
  package var errno: Int32
  package var context: String

  package init(_ call: String, errno: Int32, context: String = "") {
    self.call = call
    self.errno = errno
    self.context = context
  }

  package var description: String {
    let reason = String(cString: strerror(errno))
    return context.isEmpty ? "\(call): \(reason)" : "\(call) \(context): \(reason)"
  }
}

/// The current `errno` (Glibc's is a function-like macro Swift reaches through this).
@inline(__always)
func currentErrno() -> Int32 { errno }
