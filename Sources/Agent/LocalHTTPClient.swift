package import NIOCore
internal import NIOHTTP1
package import NIOPosix
internal import NIOSSL

/// One HTTP/1.1 response, body read whole.
package struct LocalHTTPResponse: Sendable {
  package var status: Int
  package var headers: [(name: String, value: String)]
  package var body: [UInt8]

  package var text: String { String(decoding: body, as: UTF8.self) }

  package func header(_ name: String) -> String? {
    headers.first { $0.name.lowercased() == name.lowercased() }?.value
  }
}

/// A minimal HTTP/1.1 client for the agent's local calls: the proxy admin API, app probes, metric scrapes,
/// `pilotfish wait` and `pilotfish request`. One connection per request (`Connection: close`), an overall
/// deadline, an optional source address (app probes leave from 127.0.0.6 so interception lets them through),
/// and a cap on the body size. With `tls`, HTTPS without certificate verification — what Istio's prober does
/// for HTTPS app probes (the kubelet does not verify either).
package struct LocalHTTPClient: Sendable {
  private let group: any EventLoopGroup

  package init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
    self.group = group
  }

  /// Sends one request to `host:port` and returns the response; throws `AgentError(.http)` on connection
  /// failure, timeout, a body above `maxBodyBytes` or a response cut short.
  package func request(
    _ method: String = "GET", host: String, port: Int, path: String,
    headers: [(String, String)] = [], body: [UInt8] = [], timeout: Duration,
    sourceAddress: String? = nil, maxBodyBytes: Int = 10 << 20, tls: Bool = false
  ) async throws(AgentError) -> LocalHTTPResponse {
    let target = "\(method) \(tls ? "https" : "http")://\(host):\(port)\(path)"
    do {
      return try await withThrowingTaskGroup(of: LocalHTTPResponse.self) { tasks in
        tasks.addTask {
          try await perform(
            method, host: host, port: port, path: path, headers: headers, body: body, timeout: timeout,
            sourceAddress: sourceAddress, maxBodyBytes: maxBodyBytes, tls: tls)
        }
        tasks.addTask {
          try await Task.sleep(for: timeout)
          throw AgentError(.http, "\(target): timed out after \(timeout)")
        }
        defer { tasks.cancelAll() }
        return try await tasks.next()!
      }
    } catch let error as AgentError {
      throw error
    } catch {
      throw AgentError(.http, target, cause: error)
    }
  }

  private func perform(
    _ method: String, host: String, port: Int, path: String, headers: [(String, String)], body: [UInt8],
    timeout: Duration, sourceAddress: String?, maxBodyBytes: Int, tls: Bool
  ) async throws -> LocalHTTPResponse {
    let sslContext = tls ? try Self.insecureTLS.get() : nil
    var bootstrap = ClientBootstrap(group: group)
      .connectTimeout(TimeAmount(timeout))
    if let sourceAddress {
      bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0))
    }
    let channel = try await bootstrap.connect(host: host, port: port) { channel in
      channel.eventLoop.makeCompletedFuture {
        if let sslContext {
          // No SNI for an IP literal (RFC 6066); a name is sent as the server name.
          let isIP = (try? SocketAddress(ipAddress: host, port: 0)) != nil
          try channel.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: sslContext, serverHostname: isIP ? nil : host))
        }
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
          wrappingChannelSynchronously: channel)
      }
    }
    return try await channel.executeThenClose { inbound, outbound in
      var head = HTTPRequestHead(
        version: .http1_1, method: HTTPMethod(rawValue: method), uri: Self.encodeTarget(path))
      let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
      if !headers.contains(where: { $0.0.lowercased() == "host" }) {
        head.headers.add(name: "Host", value: hostHeader)
      }
      for (name, value) in headers { head.headers.add(name: name, value: value) }
      head.headers.replaceOrAdd(name: "Connection", value: "close")
      head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
      try await outbound.write(.head(head))
      if !body.isEmpty {
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
      }
      try await outbound.write(.end(nil))

      var response: LocalHTTPResponse?
      for try await part in inbound {
        switch part {
        case .head(let h):
          response = LocalHTTPResponse(
            status: Int(h.status.code), headers: h.headers.map { ($0.name, $0.value) }, body: [])
        case .body(let chunk):
          guard response != nil else { continue }
          guard response!.body.count + chunk.readableBytes <= maxBodyBytes else {
            throw AgentError(.http, "response body exceeds \(maxBodyBytes) bytes")
          }
          response!.body.append(contentsOf: chunk.readableBytesView)
        case .end:
          if let response { return response }
        }
      }
      throw AgentError(.http, "connection closed before the response was complete")
    }
  }

  /// TLS for HTTPS app probes: any certificate is accepted, as Istio's prober (InsecureSkipVerify).
  private static let insecureTLS: Result<NIOSSLContext, any Error> = Result {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.certificateVerification = .none
    configuration.applicationProtocols = ["http/1.1"]
    return try NIOSSLContext(configuration: configuration)
  }

  /// Percent-encodes the bytes a request target may not carry raw (pilot-agent's readiness regexes contain
  /// `^`, `\\` and `|`); everything RFC 3986 allows, `%` included, is kept as is.
  static func encodeTarget(_ target: String) -> String {
    let allowed = Set(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%".utf8)
    var out = ""
    for byte in target.utf8 {
      if allowed.contains(byte) {
        out.unicodeScalars.append(Unicode.Scalar(byte))
      } else {
        let hex = String(byte, radix: 16, uppercase: true)
        out += "%" + (hex.count == 1 ? "0" + hex : hex)
      }
    }
    return out
  }
}
