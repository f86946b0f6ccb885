internal import Glibc

/// The client half of one probe: creates the socket with the probe's owner, connects (retrying
/// refusals while rules settle), reads the listener's report line and judges it.
///
/// Everything here blocks; `dial()` must run on a thread of its own (see `ProbeThread`), created in
/// the network namespace under test. The whole probe, retries and reply included, gets `timeout`.
struct ProbeDialer: Sendable {
  var probe: CaptureProbe
  var listenerPorts: [UInt16]
  var timeout: Duration
  var retryInterval: Duration = .milliseconds(100)

  /// Runs the probe. Fails only when the socket cannot be created at all (no CAP_SETUID, no memory);
  /// everything the rules can cause is a `CaptureProbeResult` with a `failure`.
  func dial() -> Result<CaptureProbeResult, InterceptionError> {
    guard listenerPorts.contains(probe.expectedListenerPort) else {
      return failed(
        "expected listener \(probe.expectedListenerPort) is not one of the validator's listeners "
          + "(\(listenerPorts.map(String.init).joined(separator: ", ")))")
    }
    guard
      let destination = CaptureSocketAddress(
        literal: probe.destination, port: probe.port, family: probe.family)
    else {
      return failed("destination \"\(probe.destination)\" is not an \(probe.family) address")
    }
    var source: CaptureSocketAddress?
    if let literal = probe.source {
      guard let parsed = CaptureSocketAddress(literal: literal, port: 0, family: probe.family) else {
        return failed("source \"\(literal)\" is not an \(probe.family) address")
      }
      source = parsed
    }
    let factory: ProbeSocketFactory
    do {
      factory = try ProbeSocketFactory()
    } catch {
      return .failure(error)
    }

    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    var attempts = 0
    while true {
      attempts += 1
      let descriptor: Int32
      do {
        descriptor = try factory.makeSocket(family: probe.family, uid: probe.uid, gid: probe.gid)
      } catch {
        return .failure(error)
      }
      defer { close(descriptor) }

      if let source {
        let status = source.withSockAddr { bind(descriptor, $0, $1) }
        guard status == 0 else {
          return failed("cannot bind the probe socket to \(source.ip): \(ProbeErrno.describe(errno))")
        }
      }

      switch connect(descriptor, to: destination, deadline: deadline, clock: clock) {
      case .connected:
        return .success(judge(readReport(descriptor, deadline: deadline, clock: clock), destination))
      case .refused(let code):
        let now = clock.now
        guard now < deadline else {
          let what = code == ECONNRESET ? "reset" : "refused"
          let tries = attempts == 1 ? "1 attempt" : "\(attempts) attempts"
          return failed(
            "connection \(what): no rule redirected \(destination.text) to a validator listener "
              + "(expected \(probe.expectedListenerPort); \(tries) in \(Self.format(timeout)))")
        }
        Self.sleep(min(retryInterval, now.duration(to: deadline)))
      case .timedOut:
        return failed("timed out after \(Self.format(timeout)) connecting to \(destination.text)")
      case .failed(let code):
        return failed("cannot connect to \(destination.text): \(ProbeErrno.describe(code))")
      }
    }
  }

  // MARK: Judging the report

  private func judge(_ report: ReportOutcome, _ destination: CaptureSocketAddress) -> CaptureProbeResult {
    let line: String
    switch report {
    case .line(let text):
      line = text
    case .timedOut:
      return result(
        failure: "timed out after \(Self.format(timeout)) waiting for the listener's report: "
          + "\(destination.text) was accepted by something other than the validator")
    case .closed(let partial):
      return result(
        failure: "the connection to \(destination.text) was closed without a report"
          + (partial.isEmpty ? "" : " (received \"\(partial)\")")
          + ": it was accepted by something other than the validator")
    case .failed(let code):
      return result(
        failure: "reading the report for \(destination.text) failed: \(ProbeErrno.describe(code))")
    }

    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
    guard fields.count >= 2, let landed = UInt16(fields[0]), listenerPorts.contains(landed) else {
      return result(
        failure: "unexpected reply \"\(line)\" on \(destination.text): it was accepted by something "
          + "other than the validator")
    }
    let original = fields[1] == "-" ? nil : String(fields[1])
    let remark = fields.count > 2 ? String(fields[2]) : nil
    let expected = destination.text
    let failure: String? =
      if remark == "direct" {
        "reached listener \(landed) directly: no NAT rule rewrote the connection to \(expected)"
      } else if remark != nil || original == nil {
        "landed on \(landed), but the listener could not read the original destination (SO_ORIGINAL_DST)"
      } else if landed != probe.expectedListenerPort {
        "landed on \(landed), expected \(probe.expectedListenerPort)"
      } else if original != expected {
        "original destination \(original ?? "-"), expected \(expected)"
      } else {
        nil
      }
    return result(landedOnPort: landed, originalDestination: original, failure: failure)
  }

  private func result(
    landedOnPort: UInt16? = nil, originalDestination: String? = nil, failure: String?
  ) -> CaptureProbeResult {
    CaptureProbeResult(
      probe: probe, landedOnPort: landedOnPort, originalDestination: originalDestination,
      failure: failure)
  }

  private func failed(_ failure: String) -> Result<CaptureProbeResult, InterceptionError> {
    .success(result(failure: failure))
  }

  // MARK: Sockets

  private enum ConnectOutcome {
    case connected
    case refused(Int32)
    case timedOut
    case failed(Int32)
  }

  private enum ReportOutcome {
    case line(String)
    case closed(partial: String)
    case timedOut
    case failed(Int32)
  }

  private enum Readiness {
    case ready
    case timedOut
    case failed(Int32)
  }

  /// Longest report line accepted; real ones are under 60 bytes.
  private static let maximumReportLength = 512

  private func connect(
    _ descriptor: Int32, to address: CaptureSocketAddress, deadline: ContinuousClock.Instant,
    clock: ContinuousClock
  ) -> ConnectOutcome {
    let status = address.withSockAddr { Glibc.connect(descriptor, $0, $1) }
    if status == 0 { return .connected }
    let code = errno
    switch code {
    case EINPROGRESS, EINTR:
      break  // The handshake goes on without us; wait for it below.
    default:
      return Self.classify(code)
    }
    switch Self.wait(descriptor, for: Int16(POLLOUT), until: deadline, clock: clock) {
    case .ready:
      break
    case .timedOut:
      return .timedOut
    case .failed(let code):
      return .failed(code)
    }
    var pending: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &pending, &length) == 0 else {
      return .failed(errno)
    }
    return pending == 0 ? .connected : Self.classify(pending)
  }

  private static func classify(_ code: Int32) -> ConnectOutcome {
    switch code {
    case ECONNREFUSED, ECONNRESET: .refused(code)
    case ETIMEDOUT: .timedOut
    default: .failed(code)
    }
  }

  private func readReport(
    _ descriptor: Int32, deadline: ContinuousClock.Instant, clock: ContinuousClock
  ) -> ReportOutcome {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 256)
    while true {
      if let newline = received.firstIndex(of: UInt8(ascii: "\n")) {
        return .line(String(decoding: received[..<newline], as: UTF8.self))
      }
      if received.count >= Self.maximumReportLength {
        return .line(String(decoding: received, as: UTF8.self))
      }
      switch Self.wait(descriptor, for: Int16(POLLIN), until: deadline, clock: clock) {
      case .ready:
        break
      case .timedOut:
        return .timedOut
      case .failed(let code):
        return .failed(code)
      }
      let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count > 0 {
        received.append(contentsOf: chunk[..<count])
      } else if count == 0 {
        return .closed(partial: String(decoding: received, as: UTF8.self))
      } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
        return .failed(errno)
      }
    }
  }

  /// Waits until `descriptor` is ready for `events` (or has an error or hang-up pending).
  private static func wait(
    _ descriptor: Int32, for events: Int16, until deadline: ContinuousClock.Instant,
    clock: ContinuousClock
  ) -> Readiness {
    while true {
      let remaining = clock.now.duration(to: deadline)
      var entry = pollfd(fd: descriptor, events: events, revents: 0)
      let status = poll(&entry, 1, milliseconds(rounding: remaining))
      if status > 0 { return .ready }
      if status == 0 {
        if clock.now >= deadline { return .timedOut }
        continue
      }
      if errno != EINTR { return .failed(errno) }
    }
  }

  /// `duration` in whole milliseconds for poll(2), rounded up so the deadline is not undershot.
  private static func milliseconds(rounding duration: Duration) -> Int32 {
    guard duration > .zero else { return 0 }
    let (seconds, attoseconds) = duration.components
    let total = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    return Int32(clamping: total)
  }

  private static func sleep(_ duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR {
      request = remaining
    }
  }

  /// `5s`, `1.5s`, `250ms`: how timeouts appear in failure messages.
  static func format(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
    if milliseconds < 1000 { return "\(milliseconds)ms" }
    return "\(Double(milliseconds) / 1000)s"
  }
}
