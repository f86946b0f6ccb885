#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// The agent must see SIGTERM and SIGINT even when its parent started it with them blocked (a blocked mask
/// is inherited across exec; test runners and some init systems do this). Call on the main thread before
/// any other thread starts, so threads created later inherit the unblocked mask.
package enum SignalMask {
  package static func unblockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
  }
}
