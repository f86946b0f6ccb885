package import NIOCore
package import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// What happened to a connection, told to its callbacks (Envoy's `ConnectionEvent`).
package enum ConnectionEvent: Equatable {
  /// An outgoing connection completed its connect.
  case connected
  /// An outgoing connect failed (refused, unreachable, timed out: errno).
  case connectFailed(Int32)
  /// The peer closed or reset the connection (errno when it failed).
  case remoteClose(Int32?)
  /// This side closed it.
  case localClose
}

/// How `close` treats bytes not yet written.
package enum ConnectionCloseType: Equatable {
  /// Write what is pending first (bounded by the delayed-close timeout), then close.
  case flushWrite
  /// Close now, dropping pending bytes.
  case noFlush
  /// Close now with a TCP reset (SO_LINGER 0).
  case reset
}

/// The network filter (or session) a connection reports to; all calls come on the reactor's thread.
package protocol ConnectionCallbacks: AnyObject {
  /// Bytes arrived in `connection.readBuffer`: consume (move the reader index past) what was used; what is
  /// left stays for the next call. `endStream` when the peer half-closed (no more bytes will come).
  func onData(_ connection: Connection, endStream: Bool)
  func onEvent(_ connection: Connection, _ event: ConnectionEvent)
  /// The connection's pending output went above its high watermark: stop feeding it.
  func onAboveWriteBufferHighWatermark(_ connection: Connection)
  /// The pending output drained below the low watermark: feed it again.
  func onBelowWriteBufferLowWatermark(_ connection: Connection)
  /// A timer made with `makeTimer(kind:)` fired.
  func onTimer(_ connection: Connection, kind: UInt32)
}

/// One TCP (or Unix) socket on a reactor, downstream or upstream, as Envoy's `ConnectionImpl`: reads into a
/// pooled buffer and hands it to its callbacks, writes speculatively (a `send` straight away when nothing is
/// pending; epoll's write interest only for what the kernel did not take), keeps write watermarks, supports
/// half-close, and closes once with a reason.
///
/// The epoll interest is cached and changed only when it must be (HAProxy's speculative I/O): reading
/// disabled or enabled, output pending or drained.
package final class Connection: ReactorHandle {
  package enum State: Equatable {
    case connecting
    case open
    case closed
  }

  /// Unowned without reference counting: a reactor outlives every connection on it (its slab holds them and
  /// it closes them all before it stops).
  package unowned(unsafe) let reactor: Reactor
  package let fd: Int32
  package private(set) var token = SlotToken(raw: 0)
  package private(set) var state: State
  package let transport: any TransportSocket
  /// Who hears about data and events: held until the connection closes (then released, which breaks the
  /// session ↔ connection cycle).
  package var callbacks: (any ConnectionCallbacks)?
  /// A downstream connection's filter-chain drain: when a listener update drains the chain and the drain
  /// time is over, the connection is closed.
  package var chainDrain: ChainDrain?
  /// Received bytes not yet consumed by the callbacks (empty and pooled when there are none).
  package var readBuffer = ByteBuffer()
  private var writeBuffer = ByteBuffer()
  private var interest: UInt32 = 0
  /// Whether the fd is in epoll (it joins when it first needs an event, and leaves when parked or closed).
  private var inEpoll = false
  /// Reading is enabled when this is zero (Envoy's read-disable count: each reason to stop counts once).
  private var readDisableCount = 0
  /// The peer's FIN was read.
  package private(set) var readEnded = false
  /// `shutdown(SHUT_WR)` is due once pending output is written.
  private var writeEndRequested = false
  package private(set) var writeEnded = false
  private var closeAfterFlush = false
  /// When half-close is off, the peer's FIN closes the connection.
  package var halfCloseEnabled = true
  /// Output above this is "above the high watermark" (0: no limit); below half of it, below the low one.
  package var writeBufferHighWatermark: Int
  private var aboveHighWatermark = false
  /// The last epoll report was a hang-up while reading was disabled: the fd is out of epoll until reading is
  /// enabled again (a level-triggered HUP would otherwise wake the reactor in a loop).
  private var parked = false
  private var delayedCloseTimer = TimerID.none
  /// How long `close(.flushWrite)` waits for the output to make progress, in milliseconds (Envoy's
  /// `delayed_close_timeout`, 1 s by default).
  package var delayedCloseTimeout: Int64 = 1000
  package private(set) var bytesReceived: UInt64 = 0
  package private(set) var bytesSent: UInt64 = 0
  /// Set when this side closed, or from the peer's reset/error.
  package private(set) var closeEvent: ConnectionEvent?

  private static let delayedCloseKind = UInt32.max

  /// Wraps an accepted (or otherwise connected) socket; it reads at once unless `reading` is false (then
  /// `readDisable(false)` starts it: a proxy that connects upstream first saves an epoll_ctl).
  package init(
    accepted fd: Int32, reactor: Reactor, transport: any TransportSocket = RawTransportSocket.shared,
    bufferLimit: Int = 1024 * 1024, reading: Bool = true
  ) throws(SystemCallError) {
    self.reactor = reactor
    self.fd = fd
    self.transport = transport
    self.state = .open
    self.writeBufferHighWatermark = bufferLimit
    self.readDisableCount = reading ? 0 : 1
    self.token = try reactor.insert(self)
    updateInterest()  // a connection that does not read yet joins epoll when it first needs an event
    transport.onConnected(fd: fd)
  }

  /// Starts a non-blocking connect to `address`; `.connected` or `.connectFailed` follows as an event.
  package init(
    connectingTo address: SocketAddress, reactor: Reactor,
    transport: any TransportSocket = RawTransportSocket.shared,
    bufferLimit: Int = 1024 * 1024, bindTo source: SocketAddress? = nil
  ) throws(SystemCallError) {
    let fd = try Socket.stream(for: address)
    do throws(SystemCallError) {
      if case .unixDomainSocket = address {
      } else {
        try Socket.setOption(
          fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, context: "TCP_NODELAY")
      }
      if let source { try Socket.bind(fd, to: source) }
      let local = Socket.isLoopback(address) || source.map(Socket.isLoopback) == true
      let connected = try Socket.connect(fd, to: address, local: local)
      self.reactor = reactor
      self.fd = fd
      self.transport = transport
      self.writeBufferHighWatermark = bufferLimit
      self.state = connected ? .open : .connecting
      self.interest = connected ? ReactorEvents.readable : ReactorEvents.writable
      self.token = try reactor.insert(self)
      do throws(SystemCallError) {
        try reactor.watch(token, fd: fd, interest: interest)
      } catch {
        reactor.forget(token)
        throw error
      }
      inEpoll = true
    } catch {
      Glibc.close(fd)
      throw error
    }
    if state == .open {
      transport.onConnected(fd: fd)
      reactor.runAtEndOfWakeUp(self)  // report `.connected` after the caller has set the callbacks
      connectedPending = true
    }
  }

  private var connectedPending = false

  package var localAddress: SocketAddress? { Socket.localAddress(fd) }
  package var remoteAddress: SocketAddress? { Socket.peerAddress(fd) }

  /// Pending output, in bytes.
  package var bufferedOutput: Int { writeBuffer.readableBytes }

  package var isReadEnabled: Bool { readDisableCount == 0 }

  /// Moves the received bytes out, so they can be passed to another connection's `write` without holding
  /// an access to this connection while that call runs (it may close this one). Give the buffer back with
  /// `returnReadBuffer(_:)` so its storage is reused.
  package func takeReadBuffer() -> ByteBuffer {
    var taken = ByteBuffer()
    swap(&taken, &readBuffer)
    return taken
  }

  /// Takes back a buffer from `takeReadBuffer()`; bytes still in it are read again first.
  package func returnReadBuffer(_ buffer: inout ByteBuffer) {
    if state != .closed, readBuffer.capacity == 0 {
      swap(&readBuffer, &buffer)
    } else if buffer.capacity > 0 {
      reactor.buffers.give(&buffer)
    }
  }

  /// Whether the connection holds a read or write buffer (an idle one holds none).
  package var holdsBuffers: Bool { readBuffer.capacity > 0 || writeBuffer.capacity > 0 }

  // MARK: Timers

  /// A timer on this connection's reactor that reports to `callbacks.onTimer(_:kind:)`; it goes with the
  /// connection when it closes.
  package func makeTimer(kind: UInt32) -> TimerID {
    let timer = reactor.makeTimer(owner: token, kind: kind)
    if firstTimer == .none {
      firstTimer = timer
    } else if secondTimer == .none {
      secondTimer = timer
    } else {
      moreTimers.append(timer)
    }
    return timer
  }

  // The timers this connection made (two inline: no allocation for the usual connect/idle pair).
  private var firstTimer = TimerID.none
  private var secondTimer = TimerID.none
  private var moreTimers: [TimerID] = []

  // MARK: Reading

  /// Stops (`true`) or resumes (`false`) reading; calls nest as Envoy's `readDisable`.
  package func readDisable(_ disable: Bool) {
    guard state != .closed else { return }
    if disable {
      readDisableCount += 1
    } else if readDisableCount > 0 {
      readDisableCount -= 1
    }
    if readDisableCount == 0, parked { parked = false }
    updateInterest()
  }

  // MARK: Writing

  /// Sends `data` (consuming it): at once when nothing is pending, else after what is. `endStream` shuts
  /// down the sending side after the data (half-close).
  package func write(_ data: inout ByteBuffer, endStream: Bool = false) {
    guard state != .closed, !writeEnded, !writeEndRequested else {
      data.moveReaderIndex(to: data.writerIndex)
      return
    }
    if data.readableBytes > 0 {
      if writeBuffer.readableBytes == 0, state == .open {
        if !send(&data) { return }
      }
      if data.readableBytes > 0 {
        if writeBuffer.capacity == 0 { writeBuffer = reactor.buffers.take() }
        writeBuffer.writeBuffer(&data)
      }
    }
    if endStream { writeEndRequested = true }
    if writeBuffer.readableBytes == 0 {
      finishWriteSide()
    }
    guard state != .closed else { return }
    updateInterest()
    checkHighWatermark()
  }

  /// Shuts down the sending side once pending output is written.
  package func shutdownWrite() {
    var empty = ByteBuffer()
    write(&empty, endStream: true)
  }

  // MARK: Closing

  package func close(_ type: ConnectionCloseType = .flushWrite) {
    guard state != .closed else { return }
    if type == .flushWrite, writeBuffer.readableBytes > 0, state == .open {
      guard !closeAfterFlush else { return }
      closeAfterFlush = true
      readDisableCount += 1
      updateInterest()
      delayedCloseTimer = makeTimer(kind: Self.delayedCloseKind)
      reactor.arm(delayedCloseTimer, afterMilliseconds: delayedCloseTimeout)
      return
    }
    if type == .reset {
      var linger = linger(l_onoff: 1, l_linger: 0)
      _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
    }
    finishClose(.localClose)
  }

  // MARK: ReactorHandle

  package func handleIO(_ events: UInt32) {
    if events == 0 {  // the end-of-wake-up pass
      if connectedPending {
        connectedPending = false
        if state == .open { callbacks?.onEvent(self, .connected) }
      }
      return
    }
    if state == .connecting {
      finishConnect(events)
      return
    }
    if events & ReactorEvents.error != 0 {
      let code = Socket.pendingError(fd)
      finishClose(.remoteClose(code == 0 ? ECONNRESET : code))
      return
    }
    if events & ReactorEvents.writable != 0 {
      flush()
      guard state != .closed else { return }
    }
    if events & (ReactorEvents.readable | ReactorEvents.hangUp) != 0 {
      if readDisableCount == 0, !readEnded {
        readOnce()
      } else if events & ReactorEvents.readable == 0 || readEnded {
        // Hang-up (or a FIN already read) while not reading: leave epoll until reading resumes.
        if events & ReactorEvents.hangUp != 0, !parked, state == .open {
          parked = true
          reactor.park(token, fd: fd)
          inEpoll = false
        }
      }
    }
  }

  package func reactorWillStop() { close(.noFlush) }

  package func handleTimer(kind: UInt32) {
    if kind == Self.delayedCloseKind {
      finishClose(.localClose)
      return
    }
    callbacks?.onTimer(self, kind: kind)
  }

  // MARK: Private

  private var wantedInterest: UInt32 {
    switch state {
    case .closed: return 0
    case .connecting: return ReactorEvents.writable
    case .open:
      var wanted: UInt32 = 0
      if readDisableCount == 0, !readEnded { wanted |= ReactorEvents.readable }
      if writeBuffer.readableBytes > 0 { wanted |= ReactorEvents.writable }
      return wanted
    }
  }

  private func updateInterest() {
    guard state != .closed, !parked else { return }
    let wanted = wantedInterest
    if !inEpoll {
      guard wanted != 0 else { return }
      do {
        try reactor.watch(token, fd: fd, interest: wanted)
      } catch {
        finishClose(.remoteClose(error.errno))
        return
      }
      inEpoll = true
      interest = wanted
    } else if wanted != interest {
      interest = wanted
      reactor.setInterest(token, fd: fd, interest: wanted)
    }
  }

  private func finishConnect(_ events: UInt32) {
    let code = Socket.pendingError(fd)
    if code != 0 || events & (ReactorEvents.error | ReactorEvents.hangUp) != 0 {
      finishClose(.connectFailed(code == 0 ? ECONNREFUSED : code))
      return
    }
    state = .open
    transport.onConnected(fd: fd)
    if writeBuffer.readableBytes > 0 { flush() } else { finishWriteSide() }
    guard state != .closed else { return }
    updateInterest()
    callbacks?.onEvent(self, .connected)
  }

  /// One read (more while each read fills what was offered), then the callbacks.
  private func readOnce() {
    if readBuffer.capacity == 0 { readBuffer = reactor.buffers.take() }
    let size = reactor.buffers.bufferSize
    var endOfStream = false
    var failure: Int32?
    // Level-triggered: one read, and another only while each fills what was offered (at most four).
    reading: for _ in 0..<4 {
      switch transport.read(fd: fd, into: &readBuffer, maximum: size) {
      case .bytes(let count):
        bytesReceived &+= UInt64(count)
        if count < size { break reading }
      case .wouldBlock:
        break reading
      case .endOfStream:
        endOfStream = true
        break reading
      case .failed(let code):
        failure = code
        break reading
      }
    }
    if let failure {
      finishClose(.remoteClose(failure))
      return
    }
    if readBuffer.readableBytes > 0 || endOfStream {
      if endOfStream {
        readEnded = true
        updateInterest()
      }
      if endOfStream, !halfCloseEnabled {
        if readBuffer.readableBytes > 0 { callbacks?.onData(self, endStream: false) }
        finishClose(.remoteClose(nil))
        return
      }
      callbacks?.onData(self, endStream: endOfStream)
    }
    releaseReadBufferIfEmpty()
    if state == .open, readEnded, writeEnded { finishClose(.remoteClose(nil)) }
  }

  private func releaseReadBufferIfEmpty() {
    if readBuffer.readableBytes == 0, readBuffer.capacity > 0 { reactor.buffers.give(&readBuffer) }
  }

  /// Sends from `data`; false when the connection failed (and is closed).
  private func send(_ data: inout ByteBuffer) -> Bool {
    while data.readableBytes > 0 {
      switch transport.write(fd: fd, from: &data) {
      case .bytes(let count):
        bytesSent &+= UInt64(count)
      case .wouldBlock, .endOfStream:
        return true
      case .failed(let code):
        finishClose(.remoteClose(code))
        return false
      }
    }
    return true
  }

  private func flush() {
    guard writeBuffer.readableBytes > 0 else { return }
    let before = writeBuffer.readableBytes
    guard send(&writeBuffer) else { return }
    // A close waiting for its output gives up only after the timeout passes with no progress (as Envoy's
    // delayed close): a slow reader of a long response is not cut off while it is still reading.
    if closeAfterFlush, writeBuffer.readableBytes < before {
      reactor.arm(delayedCloseTimer, afterMilliseconds: delayedCloseTimeout)
    }
    if writeBuffer.readableBytes == 0 {
      reactor.buffers.give(&writeBuffer)
      finishWriteSide()
      guard state != .closed else { return }
      if closeAfterFlush {
        finishClose(.localClose)
        return
      }
    }
    updateInterest()
    if aboveHighWatermark, writeBuffer.readableBytes <= writeBufferHighWatermark / 2 {
      aboveHighWatermark = false
      callbacks?.onBelowWriteBufferLowWatermark(self)
    }
  }

  private func finishWriteSide() {
    guard writeEndRequested, !writeEnded, state == .open else { return }
    writeEnded = true
    _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    if readEnded { finishClose(.remoteClose(nil)) }
  }

  private func checkHighWatermark() {
    guard writeBufferHighWatermark > 0, !aboveHighWatermark,
      writeBuffer.readableBytes > writeBufferHighWatermark
    else { return }
    aboveHighWatermark = true
    callbacks?.onAboveWriteBufferHighWatermark(self)
  }

  private func finishClose(_ event: ConnectionEvent) {
    guard state != .closed else { return }
    state = .closed
    closeEvent = event
    reactor.destroy(firstTimer)
    reactor.destroy(secondTimer)
    for timer in moreTimers { reactor.destroy(timer) }
    moreTimers = []
    // No EPOLL_CTL_DEL: closing the (never duplicated) fd takes it out of epoll, and an event already
    // queued for it is dropped by the slot's new generation.
    reactor.forget(token)
    Glibc.close(fd)
    if readBuffer.capacity > 0 { reactor.buffers.give(&readBuffer) }
    if writeBuffer.capacity > 0 { reactor.buffers.give(&writeBuffer) }
    let callbacks = self.callbacks
    self.callbacks = nil
    callbacks?.onEvent(self, event)
  }
}
