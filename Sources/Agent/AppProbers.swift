internal import Foundation
package import NIOCore
package import NIOPosix
internal import PilotfishKit

/// One rewritten Kubernetes probe from `ISTIO_KUBE_APP_PROBERS` (`status.Prober`).
package struct AppProber: Equatable, Sendable {
  package enum Action: Equatable, Sendable {
    case httpGet(path: String, port: Int, scheme: String, headers: [Header])
    case tcpSocket(port: Int)
    case grpc(port: Int, service: String?)
  }

  package struct Header: Equatable, Sendable {
    package var name: String
    package var value: String
  }

  package var action: Action
  package var timeout: Duration
}

/// The app probers by URL path (`/app-health/<container>/livez|readyz|startupz`,
/// `/app-lifecycle/<container>/prestopz|poststartz`), validated at startup like pilot-agent does.
package struct AppProbers: Equatable, Sendable {
  package var probers: [String: AppProber]

  package init(probers: [String: AppProber] = [:]) {
    self.probers = probers
  }

  package static func parse(_ text: String?, source: String = "ISTIO_KUBE_APP_PROBERS") throws(AgentError)
    -> AppProbers
  {
    guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return AppProbers() }
    let root: JSONValue
    do {
      root = try JSONValue.parseJSON(text)
    } catch {
      throw AgentError(.invalidEnvironment, "\(source): malformed JSON", cause: error)
    }
    guard case .object(let entries) = root else {
      throw AgentError(.invalidEnvironment, "\(source): expected a JSON object from URL path to prober")
    }
    var probers: [String: AppProber] = [:]
    for (path, value) in entries {
      guard isValidPath(path) else {
        throw AgentError(
          .invalidEnvironment,
          "\(source): invalid path \"\(path)\": expected /app-health/<container>/livez|readyz|startupz or "
            + "/app-lifecycle/<container>/prestopz|poststartz")
      }
      let fields = FieldReader(
        object: value.objectValue ?? [:], source: "\(source) \(path)", code: .invalidEnvironment)
      guard value.objectValue != nil else {
        throw AgentError(.invalidEnvironment, "\(source) \(path): expected an object")
      }
      let timeout = try fields.int("timeoutSeconds") ?? 1
      // Kubernetes' timeoutSeconds is an int32; a larger value would overflow the sleep's deadline (a trap).
      guard timeout <= Int(Int32.max) else {
        throw fields.fail("timeoutSeconds", "\(timeout) is above \(Int32.max)")
      }
      var actions: [AppProber.Action] = []
      if let http = value["httpGet"]?.objectValue {
        let f = FieldReader(object: http, source: "\(source) \(path) httpGet", code: .invalidEnvironment)
        guard let port = try f.port("port"), port > 0 else {
          throw f.fail("port", "an integer port is required")
        }
        var headers: [AppProber.Header] = []
        if case .array(let list)? = http["httpHeaders"] {
          for h in list {
            guard let name = h["name"]?.stringValue, let v = h["value"]?.stringValue else {
              throw f.fail("httpHeaders", "expected {name, value} strings")
            }
            headers.append(.init(name: name, value: v))
          }
        }
        var probePath = try f.string("path") ?? "/"
        if !probePath.hasPrefix("/") { probePath = "/" + probePath }
        let scheme = (try f.string("scheme") ?? "HTTP").uppercased()
        guard scheme == "HTTP" || scheme == "HTTPS" else { throw f.fail("scheme", "expected HTTP or HTTPS") }
        actions.append(.httpGet(path: probePath, port: port, scheme: scheme, headers: headers))
      }
      if let tcp = value["tcpSocket"]?.objectValue {
        let f = FieldReader(object: tcp, source: "\(source) \(path) tcpSocket", code: .invalidEnvironment)
        guard let port = try f.port("port"), port > 0 else {
          throw f.fail("port", "an integer port is required")
        }
        actions.append(.tcpSocket(port: port))
      }
      if let grpc = value["grpc"]?.objectValue {
        let f = FieldReader(object: grpc, source: "\(source) \(path) grpc", code: .invalidEnvironment)
        guard let port = try f.port("port"), port > 0 else {
          throw f.fail("port", "an integer port is required")
        }
        actions.append(.grpc(port: port, service: try f.string("service")))
      }
      guard actions.count == 1 else {
        throw AgentError(
          .invalidEnvironment, "\(source) \(path): exactly one of httpGet, tcpSocket or grpc must be set")
      }
      probers[path] = AppProber(action: actions[0], timeout: .seconds(max(1, timeout)))
    }
    return AppProbers(probers: probers)
  }

  static func isValidPath(_ path: String) -> Bool {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 4, parts[0].isEmpty, !parts[2].isEmpty else { return false }
    switch parts[1] {
    case "app-health": return ["livez", "readyz", "startupz"].contains(parts[3])
    case "app-lifecycle": return ["prestopz", "poststartz"].contains(parts[3])
    default: return false
    }
  }
}

/// Runs app probes the way pilot-agent does (`status/server.go` `handleAppProbe*`): to the pod IP (or
/// localhost), from source 127.0.0.6 so the inbound interception lets the connection through.
package struct AppProbeRunner: Sendable {
  package var probers: AppProbers
  package var target: String
  package var sourceAddress: String?
  package var statusPort: Int
  private let client: LocalHTTPClient
  private let group: any EventLoopGroup

  package init(
    probers: AppProbers, target: String, sourceAddress: String?, statusPort: Int,
    client: LocalHTTPClient = LocalHTTPClient(),
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    self.probers = probers
    self.target = target
    self.sourceAddress = sourceAddress
    self.statusPort = statusPort
    self.client = client
    self.group = group
  }

  /// Status and body for the probe at `path`, given the kubelet's request headers.
  package func probe(path: String, headers: [(String, String)]) async -> (status: Int, body: String) {
    guard let prober = probers.probers[path] else {
      return (400, "app prober config does not exists for \(path)")
    }
    switch prober.action {
    case .httpGet(let probePath, let port, let scheme, let extra):
      var forwarded: [(String, String)] = []
      for (name, value) in headers {
        let lower = name.lowercased()
        if ["connection", "content-length", "transfer-encoding", "keep-alive", "upgrade"].contains(lower) {
          continue
        }
        if lower == "host" {
          // A Host aimed at the status port is re-aimed at the app's port.
          let hostPart = value.split(separator: ":").first.map(String.init) ?? value
          forwarded.append(("Host", value.hasSuffix(":\(statusPort)") ? "\(hostPart):\(port)" : value))
          continue
        }
        forwarded.append((name, value))
      }
      for header in extra {
        forwarded.removeAll { $0.0.lowercased() == header.name.lowercased() }
        forwarded.append((header.name, header.value))
      }
      do {
        let response = try await client.request(
          host: target, port: port, path: probePath, headers: forwarded, timeout: prober.timeout,
          sourceAddress: sourceAddress, maxBodyBytes: 1 << 20, tls: scheme == "HTTPS")
        if (300..<400).contains(response.status) { return (200, "") }
        return (response.status, String(decoding: response.body.prefix(10 << 10), as: UTF8.self))
      } catch {
        return (500, "\(error)")
      }
    case .grpc(let port, let service):
      if let failure = await GRPCHealthProbe.check(
        host: target, port: port, service: service ?? "", sourceAddress: sourceAddress,
        timeout: prober.timeout,
        group: group)
      {
        return (500, failure)
      }
      return (200, "")
    case .tcpSocket(let port):
      do {
        try await connect(port: port, timeout: prober.timeout)
        return (200, "")
      } catch {
        return (500, "\(error)")
      }
    }
  }

  private func connect(port: Int, timeout: Duration) async throws {
    var bootstrap = ClientBootstrap(group: group).connectTimeout(TimeAmount(timeout))
    if let sourceAddress {
      bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0))
    }
    let channel = try await bootstrap.connect(host: target, port: port).get()
    try? await channel.close()
  }
}
