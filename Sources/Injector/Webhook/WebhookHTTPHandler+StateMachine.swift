internal import NIOCore
internal import NIOHTTP1

extension WebhookHTTPHandler {
  /// Collects one HTTP request at a time and decides what the handler does with each part.
  ///
  /// Invariants: a body never grows beyond `maxBodyBytes` (a `Content-Length` above it is refused before
  /// any body byte is kept); after a refusal nothing more is read on the connection; a request is handed
  /// on exactly once, when its end arrives.
  struct StateMachine {
    enum Action: Equatable {
      /// Nothing to do yet.
      case none
      /// The request is complete: route it and answer.
      case dispatch(WebhookRequest, keepAlive: Bool)
      /// Answer with this status and close the connection.
      case refuse(HTTPResponseStatus, String)
    }

    private enum State {
      case idle
      case receiving(HTTPRequestHead, ByteBuffer)
      case refused
    }

    private var state: State = .idle
    let maxBodyBytes: Int

    init(maxBodyBytes: Int) {
      self.maxBodyBytes = maxBodyBytes
    }

    mutating func head(_ head: HTTPRequestHead) -> Action {
      switch state {
      case .refused:
        return .none
      case .receiving:
        state = .refused
        return .refuse(.badRequest, "a new request began before the previous one ended")
      case .idle:
        if let declared = head.headers.first(name: "content-length").flatMap({ Int($0) }),
          declared > maxBodyBytes
        {
          state = .refused
          return .refuse(.payloadTooLarge, "body of \(declared) bytes exceeds the limit of \(maxBodyBytes)")
        }
        state = .receiving(head, ByteBuffer())
        return .none
      }
    }

    mutating func body(_ chunk: ByteBuffer) -> Action {
      guard case .receiving(let head, var body) = state else { return .none }
      guard body.readableBytes + chunk.readableBytes <= maxBodyBytes else {
        state = .refused
        return .refuse(.payloadTooLarge, "body exceeds the limit of \(maxBodyBytes) bytes")
      }
      state = .idle  // drop the reference so the append does not copy
      var chunk = chunk
      body.writeBuffer(&chunk)
      state = .receiving(head, body)
      return .none
    }

    mutating func end() -> Action {
      guard case .receiving(let head, var body) = state else { return .none }
      state = .idle
      let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
      let request = WebhookRequest(
        method: head.method, path: String(path), contentType: head.headers.first(name: "content-type"),
        body: body.readBytes(length: body.readableBytes) ?? [])
      return .dispatch(request, keepAlive: head.isKeepAlive)
    }
  }
}
