extension HTTPConnectionManager {
  /// The life of one downstream HTTP/1.1 connection, without I/O: one stream at a time (pipelined
  /// requests wait as bytes until the response before them is complete), keep-alive or close after
  /// each response, tunnels after a 101, and what a FIN from the client means at each point.
  struct StateMachine: Sendable, Equatable {
    enum State: Sendable, Equatable {
      /// Between requests (or before the first).
      case idle
      /// A request is being received and/or answered.
      case active(Stream)
      /// After a 101: opaque bytes both ways until either side closes.
      case tunnel
      /// Closing: nothing more is read or answered.
      case closing
    }

    struct Stream: Sendable, Equatable {
      var requestComplete = false
      var responseStarted = false
      /// The client asked for keep-alive (HTTP/1.1 default, HTTP/1.0 with `keep-alive`).
      var requestKeepAlive: Bool
      /// The connection closes once this response is written.
      var closeAfterResponse = false
    }

    enum ResponseHeadAction: Sendable, Equatable {
      /// Write the head; `close` adds `connection: close`, and the connection closes after the body.
      case writeHead(close: Bool, drainClose: Bool)
      /// 101: write the head and switch to a tunnel.
      case upgrade
    }

    enum ResponseCompleteAction: Sendable, Equatable {
      /// Close once written.
      case close
      /// Keep the connection; handle any pipelined request already received.
      case keepAlive
    }

    enum InputClosedAction: Sendable, Equatable {
      /// Nothing in flight (or a tunnel whose other side is done): close now.
      case close
      /// A request is incomplete: reset its stream and close.
      case resetStream
      /// The request is complete: answer it, then close.
      case closeAfterResponse
      /// Tunnel: half-close the upstream side.
      case halfCloseTunnel
    }

    private(set) var state: State = .idle
    private(set) var inputClosed = false

    var isIdle: Bool { state == .idle }
    var isClosing: Bool { state == .closing }
    var isTunnel: Bool { state == .tunnel }

    var stream: Stream? {
      if case .active(let stream) = state { return stream }
      return nil
    }

    /// A request head was parsed; only valid while idle.
    mutating func requestStarted(keepAlive: Bool) {
      precondition(state == .idle, "request head parsed while \(state)")
      state = .active(Stream(requestKeepAlive: keepAlive))
    }

    /// The whole request (head and body) was received.
    mutating func requestCompleted() {
      guard case .active(var stream) = state else { return }
      stream.requestComplete = true
      state = .active(stream)
    }

    /// The response head is about to be written. `draining`: the listener is draining;
    /// `bodyUntilClose`: the body is delimited by closing the connection.
    mutating func responseHeadStarted(status: Int, draining: Bool, bodyUntilClose: Bool) -> ResponseHeadAction
    {
      guard case .active(var stream) = state else { return .writeHead(close: true, drainClose: false) }
      stream.responseStarted = true
      if status == 101 && stream.requestComplete {
        state = .tunnel
        return .upgrade
      }
      var drainClose = false
      if !stream.closeAfterResponse {
        // A request still arriving does not decide it here: if the response ends first, the connection
        // closes then (`responseCompleted`), as Envoy does; a slow echo keeps the connection.
        if !stream.requestKeepAlive || bodyUntilClose || inputClosed {
          stream.closeAfterResponse = true
        } else if draining {
          stream.closeAfterResponse = true
          drainClose = true
        }
      }
      state = .active(stream)
      return .writeHead(close: stream.closeAfterResponse, drainClose: drainClose)
    }

    /// Forces `connection: close` on the current response (a local reply after a framing error …).
    mutating func closeAfterResponse() {
      guard case .active(var stream) = state else { return }
      stream.closeAfterResponse = true
      state = .active(stream)
    }

    /// The response was completely written (or queued).
    mutating func responseCompleted() -> ResponseCompleteAction {
      guard case .active(let stream) = state else { return .close }
      if stream.closeAfterResponse || !stream.requestComplete || inputClosed {
        state = .closing
        return .close
      }
      state = .idle
      return .keepAlive
    }

    /// The client sent FIN.
    mutating func clientInputClosed() -> InputClosedAction {
      inputClosed = true
      switch state {
      case .idle, .closing:
        state = .closing
        return .close
      case .tunnel:
        return .halfCloseTunnel
      case .active(var stream):
        guard stream.requestComplete else {
          state = .closing
          return .resetStream
        }
        stream.closeAfterResponse = true
        state = .active(stream)
        return .closeAfterResponse
      }
    }

    /// The stream was reset (upstream failure after the response started, timeout mid-response …).
    mutating func streamReset() {
      state = .closing
    }

    mutating func close() {
      state = .closing
    }

    /// Whether the handler should ask the channel for more bytes. Bytes of a pipelined request wait in
    /// `backlog`; reading stops when such a backlog exists, when the upstream cannot take more, or,
    /// between requests, when the client is not reading its responses (`downstreamWritable` false).
    func shouldRead(hasBacklog: Bool, upstreamWritable: Bool, downstreamWritable: Bool) -> Bool {
      switch state {
      case .closing: return false
      case .idle: return downstreamWritable
      case .tunnel: return upstreamWritable
      case .active(let stream):
        if stream.requestComplete { return !hasBacklog }
        return upstreamWritable
      }
    }
  }
}
