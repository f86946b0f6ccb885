internal import Foundation
internal import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The scriptable ADS control plane of `Tests/Helpers/xds_control_plane.py` (grpcio + PyPI xds-protos) as a
/// child process serving a Unix socket: commands go to its stdin as JSON lines, its events (every request
/// it received, every response it sent) come back as ``Event``s. Every wait is bounded.
///
/// ```swift
/// let plane = try await XDSControlPlaneProcess.start()
/// try await plane.set(XDSControlPlaneProcess.clusterType, version: "v1", resources: [#"{"name":"a"}"#])
/// let ack = try await plane.nextRequest("CDS ACK") { $0.versionInfo == "v1" }
/// ```
package final class XDSControlPlaneProcess: Sendable {
  /// Whether python3 can run the control plane (imports grpc and the official Envoy protos).
  package static let isAvailable: Bool = {
    let probe = try? ChildProcess.run(
      "/usr/bin/env",
      [
        "python3", "-c",
        "import grpc, envoy.service.discovery.v3.ads_pb2_grpc, envoy.config.cluster.v3.cluster_pb2",
      ],
      timeout: .seconds(60))
    return probe?.exitStatus == 0
  }()

  /// The reason tests skip without it.
  package static let missing =
    "python3 cannot import grpc and the Envoy protos: pip install grpcio xds-protos"

  /// Tests run when the control plane can, and must where the environment says so (`CI=true`): there a
  /// missing install fails them instead of skipping.
  package static var shouldRun: Bool { isAvailable || TestEnvironment.mandatory }

  package static let clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  package static let endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
  package static let listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
  package static let routeType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

  /// The script, found from this file's path (Sources/TestSupport/XDSControlPlaneProcess.swift).
  package static let scriptPath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Tests/Helpers/xds_control_plane.py").path

  /// One line the control plane printed.
  package struct Event: Sendable, Decodable, CustomStringConvertible {
    package struct ErrorDetail: Sendable, Decodable, Equatable {
      package var code: Int
      package var message: String

      package init(code: Int, message: String) {
        self.code = code
        self.message = message
      }
    }

    /// "ready", "request", "response", "stream_opened", "stream_closed", "done", "error".
    package var event: String
    package var stream: Int?
    package var delta: Bool?
    package var typeURL: String?
    // Requests.
    package var versionInfo: String?
    package var responseNonce: String?
    package var resourceNames: [String]?
    package var subscribe: [String]?
    package var unsubscribe: [String]?
    package var initialResourceVersions: [String: String]?
    package var nodeID: String?
    package var errorDetail: ErrorDetail?
    // Responses.
    package var version: String?
    package var nonce: String?
    package var resources: [String]?
    package var removed: [String]?
    // Commands.
    package var id: Int?
    package var message: String?
    /// The ready event of a control plane on TCP: its port.
    package var port: Int?
    /// The line as printed.
    package var line = ""

    enum CodingKeys: String, CodingKey {
      case event, stream, delta, subscribe, unsubscribe, version, nonce, resources, removed, id, message, port
      case typeURL = "type_url"
      case versionInfo = "version_info"
      case responseNonce = "response_nonce"
      case resourceNames = "resource_names"
      case initialResourceVersions = "initial_resource_versions"
      case nodeID = "node_id"
      case errorDetail = "error_detail"
    }

    package var isRequest: Bool { event == "request" }
    package var isResponse: Bool { event == "response" }
    package var description: String { line }
  }

  package struct Failure: Error, CustomStringConvertible {
    package var description: String

    package init(description: String) { self.description = description }
  }

  private struct State {
    var events: [Event] = []
    /// Where ``next(_:timeout:where:)`` resumes.
    var cursor = 0
    var nextCommand = 0
    var stderr = Data()
    var exited = false
  }

  package let socketPath: String
  /// The TCP port, for a control plane started with `tcp: true` (its socket path is then "tcp").
  package var port: Int? { events.first { $0.event == "ready" }?.port }
  /// The temporary directory holding the socket, when this type made it.
  private let directory: URL?
  private let process: Process
  private let input: FileHandle
  /// The state, shared with the reader threads.
  private final class Box: Sendable {
    let mutex = Mutex(State())
    func withLock<R>(_ body: (inout State) -> R) -> R { mutex.withLock { body(&$0) } }
  }

  private let state = Box()

  /// Starts the control plane on `socketPath` (nil: a socket in a fresh short temporary directory, removed
  /// by ``stop()``) and waits (bounded) until it listens.
  package static func start(
    socketPath: String? = nil, tcp: Bool = false, timeout: Duration = .seconds(30)
  ) async throws -> XDSControlPlaneProcess {
    guard isAvailable else { throw Failure(description: missing) }
    let plane = try XDSControlPlaneProcess(socketPath: tcp ? "tcp" : socketPath)
    do {
      _ = try await plane.next("ready", timeout: timeout) { $0.event == "ready" }
    } catch {
      plane.stop()
      throw error
    }
    return plane
  }

  private init(socketPath: String?) throws {
    if let socketPath {
      directory = nil
      self.socketPath = socketPath
    } else {
      // Unix socket paths are limited to 107 bytes: keep the directory short.
      let directory = URL(fileURLWithPath: "/tmp/xcp-\(UUID().uuidString.prefix(8))", isDirectory: true)
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      self.directory = directory
      self.socketPath = directory.appendingPathComponent("ads.sock").path
    }
    process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-u", Self.scriptPath, self.socketPath]
    let stdin = Pipe()
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    input = stdin.fileHandleForWriting
    try process.run()
    let state = self.state
    Self.readLines(stdout.fileHandleForReading) { line in
      guard var event = try? JSONDecoder().decode(Event.self, from: Data(line.utf8)) else { return }
      event.line = line
      state.withLock { $0.events.append(event) }
    } done: {
      state.withLock { $0.exited = true }
    }
    Self.readLines(stderr.fileHandleForReading) { line in
      state.withLock { $0.stderr.append(contentsOf: Data((line + "\n").utf8)) }
    } done: {
    }
  }

  deinit { stop() }

  /// Ends the process (closing its stdin, then SIGKILL if it lingers) and removes its directory.
  package func stop() {
    try? input.close()
    if process.isRunning { _ = ChildProcess.reap(process, timeout: .seconds(5)) }
    if let directory { try? FileManager.default.removeItem(at: directory) }
  }

  /// Every event so far.
  package var events: [Event] { state.withLock { $0.events } }
  /// Every request received so far.
  package var requests: [Event] { events.filter(\.isRequest) }
  /// What the process wrote to stderr.
  package var stderrText: String { state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

  // MARK: Commands

  /// Sends one command (a JSON object, without "id") and waits until the control plane has carried it out.
  @discardableResult
  package func command(_ json: String, timeout: Duration = .seconds(20)) async throws -> Event {
    guard json.hasPrefix("{") else { throw Failure(description: "a command is a JSON object: \(json)") }
    let id = state.withLock { state in
      state.nextCommand += 1
      return state.nextCommand
    }
    let line = "{\"id\":\(id)," + json.dropFirst() + "\n"
    do {
      try input.write(contentsOf: Data(line.utf8))
    } catch {
      throw Failure(description: "the control plane's stdin is closed: \(error)\n\(stderrText)")
    }
    let done = try await wait("command \(id) done", timeout: timeout, from: 0) {
      ($0.event == "done" || $0.event == "error") && $0.id == id
    }.event
    if done.event == "error" { throw Failure(description: "command failed: \(done.message ?? "")\n\(json)") }
    return done
  }

  /// The snapshot of `typeURL` becomes `resources` (Envoy JSON objects without "@type", which is added) at
  /// `version`; subscribed streams get pushes.
  package func set(_ typeURL: String, version: String, resources: [String]) async throws {
    let typed = resources.map { resource -> String in
      let body = resource.drop { $0 == " " || $0 == "{" }
      return "{\"@type\":\"\(typeURL)\"" + (body.hasPrefix("}") ? "" : ",") + body
    }
    try await command(
      "{\"cmd\":\"set\",\"type_url\":\"\(typeURL)\",\"version\":\"\(version)\",\"resources\":["
        + typed.joined(separator: ",") + "]}")
  }

  /// Drops `names` from the snapshot of `typeURL`, now at `version`.
  package func remove(_ typeURL: String, version: String, names: [String]) async throws {
    let list = names.map { "\"\($0)\"" }.joined(separator: ",")
    try await command(
      "{\"cmd\":\"remove\",\"type_url\":\"\(typeURL)\",\"version\":\"\(version)\",\"names\":[\(list)]}")
  }

  /// Sends `response` (proto JSON of a DiscoveryResponse, or a DeltaDiscoveryResponse when `delta`) as is on
  /// every open stream of that kind.
  package func raw(_ response: String, delta: Bool) async throws {
    try await command("{\"cmd\":\"raw\",\"delta\":\(delta),\"response\":\(response)}")
  }

  /// Ends every open stream with gRPC status `code`.
  package func closeStreams(code: Int = 14) async throws {
    try await command("{\"cmd\":\"close_streams\",\"code\":\(code)}")
  }

  // MARK: Waiting

  /// The first event after the previous match of this method satisfying `predicate`; moves past it.
  /// Throws when none arrives within `timeout`, listing what did.
  @discardableResult
  package func next(
    _ what: String, timeout: Duration = .seconds(20), where predicate: @Sendable (Event) -> Bool
  ) async throws -> Event {
    let from = state.withLock { $0.cursor }
    let (event, index) = try await wait(what, timeout: timeout, from: from, predicate)
    state.withLock { $0.cursor = Swift.max($0.cursor, index + 1) }
    return event
  }

  /// The next request (see ``next(_:timeout:where:)``) satisfying `predicate`.
  @discardableResult
  package func nextRequest(
    _ what: String, timeout: Duration = .seconds(20), where predicate: @Sendable (Event) -> Bool
  ) async throws -> Event {
    try await next(what, timeout: timeout) { $0.isRequest && predicate($0) }
  }

  private func wait(
    _ what: String, timeout: Duration, from: Int, _ predicate: (Event) -> Bool
  ) async throws -> (event: Event, index: Int) {
    let deadline = ContinuousClock.now + timeout
    while true {
      let (found, exited) = state.withLock { state -> ((Event, Int)?, Bool) in
        let start = Swift.min(from, state.events.count)
        let index = state.events[start...].firstIndex(where: predicate)
        return (index.map { (state.events[$0], $0) }, state.exited)
      }
      if let found { return found }
      if exited || ContinuousClock.now >= deadline {
        let seen = events.suffix(30).map(\.line).joined(separator: "\n")
        throw Failure(
          description: "control plane: \(exited ? "exited" : "timed out") waiting for \(what); last events:\n"
            + "\(seen)\nstderr:\n\(stderrText.suffix(4000))")
      }
      try await Task.sleep(for: .milliseconds(10))
    }
  }

  /// Reads `handle` on a thread of its own, line by line, until end of file.
  private static func readLines(
    _ handle: FileHandle, _ body: @escaping @Sendable (String) -> Void, done: @escaping @Sendable () -> Void
  ) {
    let fd = handle.fileDescriptor
    Thread {
      var pending = Data()
      var buffer = [UInt8](repeating: 0, count: 65536)
      while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        pending.append(contentsOf: buffer[0..<count])
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
          body(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
          pending.removeSubrange(pending.startIndex...newline)
        }
      }
      if !pending.isEmpty { body(String(decoding: pending, as: UTF8.self)) }
      done()
      try? handle.close()
    }.start()
  }
}
