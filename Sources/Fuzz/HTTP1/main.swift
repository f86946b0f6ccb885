// libFuzzer target: the HTTP/1 request path without sockets (hack/fuzz.sh builds and runs it).
//
// Input: byte 0 and the bytes after it choose how the rest is cut into reads; the rest is what a client
// sends on one connection. The connection is driven as `HTTPConnectionManager.processInput` does it:
// request heads through `HTTP1HeadParser`, bodies through `BodyFramer` (the chunked scanner included),
// the downstream `StateMachine` for keep-alive, pipelining and close; each response is "sent" when its
// request is complete. The same bytes are then fed in one read, and both runs must see the same
// messages at the same offsets (a parser that depends on where reads end is a smuggling bug).
// The same bytes are also parsed as a response head (to a method the input chooses).
@testable import ProxyHTTP

/// What one connection saw, in order: comparable between the split and the whole run.
enum Event: Equatable {
  case head(offset: Int, length: Int, framing: HTTP1Framing, keepAlive: Bool)
  case bodyEnd(offset: Int)
  case invalidHead(offset: Int, code: HTTP1CodecError.Code)
  /// Where in the body the error is found depends on how far earlier reads went: only the code is kept.
  case invalidBody(code: HTTP1CodecError.Code)
  case closed
}

/// One downstream connection: buffered input, the active request's body framer and the state machine.
struct Connection {
  var machine = HTTPConnectionManager.StateMachine()
  var pending: [UInt8] = []
  /// Offset in the whole input of `pending[0]`.
  var base = 0
  var framer: BodyFramer?
  var events: [Event] = []
  let limits = HTTP1Limits(maxHeadBytes: 2048, maxHeaderCount: 16, maxChunkLineBytes: 64)

  mutating func receive(_ bytes: ArraySlice<UInt8>) {
    if machine.isClosing { return }
    pending += bytes
    process()
  }

  mutating func process() {
    while !pending.isEmpty && !machine.isClosing && !machine.isTunnel {
      if var framer {
        let progress = pending.withUnsafeBytes { framer.consume($0) }
        self.framer = framer
        switch progress {
        case .needMore:
          consume(pending.count)
        case .complete(let n):
          precondition(n >= 0 && n <= pending.count, "body end \(n) outside the \(pending.count) bytes given")
          consume(n)
          events.append(.bodyEnd(offset: base))
          self.framer = nil
          machine.requestCompleted()
          respond()
        case .invalid(let error):
          events.append(.invalidBody(code: error.code))
          machine.closeAfterResponse()
          respond()
          pending = []
        }
        continue
      }
      guard machine.isIdle else { return }  // pipelined bytes wait for the response
      let result = pending.withUnsafeBytes { HTTP1HeadParser.parseRequest($0, limits: limits) }
      switch result {
      case .incomplete:
        precondition(pending.count <= limits.maxHeadBytes, "incomplete beyond the head limit")
        return
      case .invalid(let error):
        events.append(.invalidHead(offset: base, code: error.code))
        machine.close()
        pending = []
        return
      case .complete(let head, let framing):
        precondition(head.length > 0 && head.length <= pending.count, "head length \(head.length)")
        pending.withUnsafeBytes { touch(head, $0) }
        events.append(.head(offset: base, length: head.length, framing: framing, keepAlive: head.keepAlive))
        consume(head.length)
        machine.requestStarted(keepAlive: head.keepAlive)
        if framing == .upgrade {
          machine.requestCompleted()
          framer = nil
          respond(status: 101)
        } else {
          let framer = BodyFramer(framing, limits: limits)
          if case .none = framer {
            machine.requestCompleted()
            respond()
          } else {
            self.framer = framer
          }
        }
      }
    }
  }

  /// The response to the active stream, written once its request is complete.
  mutating func respond(status: Int = 200) {
    _ = machine.responseHeadStarted(status: status, draining: false, bodyUntilClose: false)
    if machine.isTunnel {
      events.append(.closed)
      return
    }
    if machine.responseCompleted() == .close { events.append(.closed) }
  }

  mutating func consume(_ n: Int) {
    pending.removeFirst(n)
    base += n
  }

  mutating func end() {
    let before = machine.isClosing
    switch machine.clientInputClosed() {
    case .resetStream, .close:
      if !before { events.append(.closed) }
    case .closeAfterResponse, .halfCloseTunnel:
      break
    }
    if let framer { _ = framer.finishAtEndOfInput() }
  }
}

/// Reads every accessor of a parsed head, so offsets that point outside the bytes are caught here.
func touch(_ head: HTTP1Head, _ bytes: UnsafeRawBufferPointer) {
  _ = head.target(in: bytes)
  _ = head.reason(in: bytes)
  _ = head.method?.name
  _ = head.header(named: "host", in: bytes)
  _ = head.headerValues(named: "transfer-encoding", in: bytes)
  _ = head.hopByHopIndices
  for i in head.fields.indices {
    _ = head.name(at: i, in: bytes)
    _ = head.value(at: i, in: bytes)
  }
}

/// Read sizes from the control bytes: `data[0] & 7` + 1 sizes follow it, each 1...64 (or 1...256 when the
/// top bit of `data[0]` is set), used in turn.
func reads(_ data: [UInt8]) -> (sizes: [Int], payload: ArraySlice<UInt8>) {
  guard let control = data.first else { return ([], []) }
  let k = Int(control & 7) + 1
  let sizeBytes = data.dropFirst().prefix(k)
  let wide = control & 0x80 != 0
  let sizes = sizeBytes.map { wide ? Int($0) + 1 : Int($0 & 0x3f) + 1 }
  return (sizes.isEmpty ? [1] : sizes, data.dropFirst(1 + sizeBytes.count))
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzHTTP1(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
  let data = Array(UnsafeBufferPointer(start: pointer, count: count))
  let (sizes, payload) = reads(data)

  var split = Connection()
  var offset = payload.startIndex
  var turn = 0
  while offset < payload.endIndex {
    let n = min(sizes[turn % sizes.count], payload.endIndex - offset)
    split.receive(payload[offset..<(offset + n)])
    offset += n
    turn += 1
  }
  split.end()

  var whole = Connection()
  whole.receive(payload)
  whole.end()
  precondition(
    split.events == whole.events,
    "reads of \(sizes) saw \(split.events), one read saw \(whole.events)")

  // The same bytes as a response head, to a request method the control byte picks.
  let methods: [HTTP1Method] = [.get, .head, .connect, .post]
  let method = methods[Int((data.first ?? 0) >> 3) % methods.count]
  let limits = HTTP1Limits(maxHeadBytes: 2048, maxHeaderCount: 16, maxChunkLineBytes: 64)
  Array(payload).withUnsafeBytes { bytes in
    if case .complete(let head, let framing) = HTTP1HeadParser.parseResponse(
      bytes, requestMethod: method, limits: limits)
    {
      precondition(head.length > 0 && head.length <= bytes.count)
      touch(head, bytes)
      var framer = BodyFramer(framing, limits: limits)
      _ = framer.consume(UnsafeRawBufferPointer(rebasing: bytes[head.length...]))
    }
  }
  return 0
}
