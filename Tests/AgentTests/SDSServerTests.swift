import Foundation
import Logging
import ServiceLifecycle
import TestSupport
import Testing

@testable import Agent

/// Certificates made with the `openssl` CLI (a third party), for file-mounted secrets.
struct OpenSSLPKI {
  let directory: String

  init(directory: String) throws {
    self.directory = directory
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try Self.sh(
      """
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -subj "/O=pilotfish-test/CN=test root" -days 2 2>/dev/null
      """, in: directory)
  }

  /// A leaf for `spiffe` signed by the root: `<name>.pem` and `<name>.key` in the directory.
  func leaf(_ name: String, spiffe: String) throws {
    try Self.sh(
      """
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \(name).key -out \(name).csr \
        -subj "/O=pilotfish-test" 2>/dev/null &&
      printf 'subjectAltName=URI:\(spiffe)\\nextendedKeyUsage=serverAuth,clientAuth\\n' > \(name).ext &&
      openssl x509 -req -in \(name).csr -CA ca.pem -CAkey ca.key -CAcreateserial -out \(name).pem -days 1 \
        -extfile \(name).ext 2>/dev/null
      """, in: directory)
  }

  @discardableResult
  static func sh(_ script: String, in directory: String) throws -> String {
    let result = try Binaries.run("/bin/sh", ["-c", script], directory: directory)
    guard result.status == 0 else {
      throw CocoaError(
        .fileWriteUnknown, userInfo: [NSDebugDescriptionErrorKey: "\(script): \(result.output)"])
    }
    return result.output
  }
}

/// The SDS client's view of one response (Helpers/sds_client.py writes them as JSON).
struct SDSResponse: Decodable {
  struct Resource: Decodable {
    var name: String
    var kind: String
    var chain: String?
    var key: String?
    var root: String?
  }
  var version: String
  var nonce: String
  var type_url: String
  var resources: [Resource]

  func resource(_ name: String) -> Resource? { resources.first { $0.name == name } }
}

/// The agent's cache and SDS server on a temporary socket, with a Python grpcio client to talk to them.
final class SDSUnderTest: Sendable {
  let directory: String
  let socketPath: String
  let cache: SecretCache
  private let task: Task<Void, any Error>
  private let group: ServiceGroup

  init(
    source: WorkloadCertificateSource, policy: SecretRotationPolicy = .init(), outputDirectory: String? = nil,
    fileAccess: SecretFileAccess = .systemRootsOnly
  )
    async throws
  {
    directory = "/tmp/pf-sds-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    socketPath = directory + "/uds/socket"
    var logger = Logger(label: "sds-test")
    logger.logLevel = .debug
    let cache = SecretCache(
      source: source, policy: policy, outputDirectory: outputDirectory, fileAccess: fileAccess,
      pollInterval: .milliseconds(100),
      logger: logger)
    self.cache = cache
    let server = SDSServer(socketPath: socketPath, owner: nil, cache: cache, logger: logger)
    let group = ServiceGroup(services: [cache, server], logger: logger)
    self.group = group
    task = Task { try await group.run() }
    // Generous: under CI's parallel load the service group can take seconds to get a pool thread.
    let deadline = ContinuousClock.now + .seconds(45)
    while !FileManager.default.fileExists(atPath: socketPath) {
      guard ContinuousClock.now < deadline else { throw CocoaError(.fileNoSuchFile) }
      try await Task.sleep(for: .milliseconds(20))
    }
  }

  /// A server whose mounted workload files are missing, with a PKI (`pki.leaf("one")`) made in `pkiDirectory`,
  /// serving `file-cert:`/`file-root:` names as `fileAccess` allows.
  static func withoutMounts(
    pkiDirectory: String, spiffe: String, fileAccess: SecretFileAccess
  ) async throws -> SDSUnderTest {
    let pki = try OpenSSLPKI(directory: pkiDirectory)
    try pki.leaf("one", spiffe: spiffe)
    let missing = (pkiDirectory as NSString).deletingLastPathComponent + "/missing"
    return try await SDSUnderTest(
      source: .files(chainPath: missing, keyPath: missing, rootPath: missing), fileAccess: fileAccess)
  }

  /// Runs the Python SDS client to completion (off the cooperative pool) and returns its responses.
  func client(
    names: [String], responses: Int = 1, fetch: Bool = false, timeout: Int = 20,
    whileWaiting: (@Sendable (_ responseDirectory: String) async throws -> Void)? = nil
  ) async throws -> (status: Int32, output: String, responses: [SDSResponse]) {
    let out = directory + "/client-" + UUID().uuidString.prefix(6)
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    var arguments = [
      Binaries.helper("sds_client.py"), "--socket", socketPath, "--names", names.joined(separator: ","),
      "--responses", "\(responses)", "--out", out, "--timeout", "\(timeout)",
    ]
    if fetch { arguments.append("--fetch") }
    let run = Task { [arguments] in
      try await onThread { try Binaries.run("/usr/bin/env", ["python3"] + arguments) }
    }
    if let whileWaiting { try await whileWaiting(out) }
    let result = try await run.value
    return (result.status, result.output, try readResponses(SDSResponse.self, in: out))
  }

  func stop() async {
    await group.triggerGracefulShutdown()
    _ = try? await task.value
    try? FileManager.default.removeItem(atPath: directory)
  }

  /// Waits until the client has written response `index` (bounded).
  static func waitForResponse(_ index: Int, in out: String, timeout: Duration = .seconds(15)) async throws {
    let deadline = ContinuousClock.now + timeout
    while !FileManager.default.fileExists(atPath: "\(out)/response-\(index).json") {
      guard ContinuousClock.now < deadline else {
        throw CocoaError(.fileReadNoSuchFile, userInfo: [NSDebugDescriptionErrorKey: "no response \(index)"])
      }
      try await Task.sleep(for: .milliseconds(20))
    }
  }
}

/// The `response-1.json`, `response-2.json`, … a Python gRPC helper wrote to `directory`, in order.
func readResponses<Response: Decodable>(_ type: Response.Type, in directory: String) throws -> [Response] {
  var responses: [Response] = []
  while let data = FileManager.default.contents(atPath: "\(directory)/response-\(responses.count + 1).json") {
    responses.append(try JSONDecoder().decode(type, from: data))
  }
  return responses
}

/// Checks a served chain against served roots with `openssl verify` and returns the leaf's URI SANs.
/// `checkTime: false` skips the validity window, for short-lived test certificates checked after a wait.
func verifyWithOpenSSL(chain: String, root: String, in directory: String, checkTime: Bool = true) throws
  -> String
{
  let blocks = SecretFiles.certificateBlocks(chain)
  try Data(root.utf8).write(to: URL(fileURLWithPath: directory + "/served-root.pem"))
  try Data(blocks[0].utf8).write(to: URL(fileURLWithPath: directory + "/served-leaf.pem"))
  try Data(blocks.dropFirst().joined(separator: "\n").utf8).write(
    to: URL(fileURLWithPath: directory + "/served-intermediates.pem"))
  let untrusted = blocks.count > 1 ? "-untrusted served-intermediates.pem" : ""
  let time = checkTime ? "" : "-no_check_time"
  try OpenSSLPKI.sh(
    "openssl verify \(time) -CAfile served-root.pem \(untrusted) served-leaf.pem", in: directory)
  return try OpenSSLPKI.sh("openssl x509 -noout -ext subjectAltName -in served-leaf.pem", in: directory)
}

@Suite("SDS stream state machine")
struct SDSStreamStateMachineTests {
  @Test func newStreamRespondsWithEveryName() {
    var state = SDSStreamStateMachine()
    #expect(
      state.received(resourceNames: ["default", "ROOTCA"], responseNonce: "", errorMessage: nil)
        == .respond(["default", "ROOTCA"]))
    #expect(state.watches("ROOTCA"))
  }

  @Test func ackNackStaleAndAddedNames() {
    var state = SDSStreamStateMachine()
    _ = state.received(resourceNames: ["default"], responseNonce: "", errorMessage: nil)
    state.sent(nonce: "n1")
    #expect(
      state.received(resourceNames: ["default"], responseNonce: "n1", errorMessage: nil) == .acknowledge)
    #expect(
      state.received(resourceNames: ["default"], responseNonce: "n0", errorMessage: nil)
        == .ignoreStale(nonce: "n0"))
    #expect(
      state.received(resourceNames: ["default"], responseNonce: "n1", errorMessage: "bad key")
        == .nack(message: "bad key"))
    #expect(
      state.received(resourceNames: ["default", "ROOTCA"], responseNonce: "n1", errorMessage: nil)
        == .respond(["ROOTCA"]))
    state.sent(nonce: "n2")
    // Fewer names: an unsubscribe, nothing to send, and pushes for the dropped name stop.
    #expect(state.received(resourceNames: ["ROOTCA"], responseNonce: "n2", errorMessage: nil) == .acknowledge)
    #expect(!state.watches("default"))
  }

  @Test func resourceNames() {
    #expect(SecretName("default") == .workloadCertificate)
    #expect(SecretName("ROOTCA") == .rootCertificate)
    #expect(
      SecretName("file-cert:/a/c.pem~/a/k.pem")
        == .fileCertificate(chainPath: "/a/c.pem", keyPath: "/a/k.pem"))
    #expect(SecretName("file-root:/a/r.pem") == .fileRoot(path: "/a/r.pem"))
    #expect(SecretName("file-root:system") == .systemRoots)
    #expect(SecretName("file-cert:/only-cert.pem") == nil)
    #expect(SecretName("something") == nil)
    #expect(SecretName.fileCertificate(chainPath: "/a", keyPath: "/b").description == "file-cert:/a~/b")
  }

  @Test func rotationHappensAtTheGracePeriod() {
    let policy = SecretRotationPolicy()
    let created = Date(timeIntervalSince1970: 0)
    let expiry = created.addingTimeInterval(86_400)
    #expect(
      policy.rotationDelay(createdAt: created, notAfter: expiry, now: created, random: 0, sign: 0) == 43_200)
    let late = policy.rotationDelay(createdAt: created, notAfter: expiry, now: created, random: 1, sign: 1)
    #expect(abs(late - (43_200 - 864)) < 1)
    #expect(policy.rotationDelay(createdAt: created, notAfter: expiry, now: expiry, random: 0, sign: 0) == 0)
  }
}

@Suite("SDS server with file-mounted certificates (grpcio client)")
struct SDSFileTests {
  static let spiffe = "spiffe://cluster.local/ns/shop/sa/web"

  /// A Kubernetes secret volume: files are symlinks through `..data`, swapped atomically on update.
  static func secretVolume(_ pki: OpenSSLPKI, leaf: String, in volume: String, generation: Int) throws {
    try OpenSSLPKI.sh(
      """
      mkdir -p ..gen\(generation) && cp ../pki/\(leaf).pem ..gen\(generation)/cert-chain.pem &&
      cp ../pki/\(leaf).key ..gen\(generation)/key.pem && cp ../pki/ca.pem ..gen\(generation)/root-cert.pem &&
      ln -sfn ..gen\(generation) ..data.tmp && mv -T ..data.tmp ..data &&
      for f in cert-chain.pem key.pem root-cert.pem; do [ -L $f ] || ln -s ..data/$f $f; done
      """, in: volume)
  }

  @Test func servesDefaultAndRootAndPushesASymlinkSwap() async throws {
    let base = "/tmp/pf-sdsf-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    let pki = try OpenSSLPKI(directory: base + "/pki")
    try pki.leaf("one", spiffe: Self.spiffe)
    try pki.leaf("two", spiffe: Self.spiffe)
    let volume = base + "/volume"
    try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
    try Self.secretVolume(pki, leaf: "one", in: volume, generation: 1)

    let sds = try await SDSUnderTest(
      source: .files(
        chainPath: volume + "/cert-chain.pem", keyPath: volume + "/key.pem",
        rootPath: volume + "/root-cert.pem"))
    let mode = try FileManager.default.attributesOfItem(atPath: sds.socketPath)[.posixPermissions] as? Int
    #expect(mode == 0o600)

    let result = try await sds.client(names: ["default", "ROOTCA"], responses: 2) { out in
      try await SDSUnderTest.waitForResponse(1, in: out)
      try Self.secretVolume(pki, leaf: "two", in: volume, generation: 2)
    }
    await sds.stop()
    #expect(result.status == 0, "\(result.output)")
    try #require(result.responses.count == 2)
    let first = result.responses[0]
    #expect(first.type_url == WorkloadSecret.typeURL)
    let chain = try #require(first.resource("default")?.chain)
    let root = try #require(first.resource("ROOTCA")?.root)
    #expect(first.resource("default")?.key?.contains("PRIVATE KEY") == true)
    let sans = try verifyWithOpenSSL(chain: chain, root: root, in: base)
    #expect(sans.contains("URI:" + Self.spiffe))
    #expect(chain == (try String(contentsOfFile: base + "/pki/one.pem", encoding: .utf8)))
    // The swap is pushed on the open stream: only `default` changed.
    let pushed = result.responses[1]
    #expect(pushed.resources.map(\.name) == ["default"])
    #expect(
      pushed.resource("default")?.chain
        == (try String(contentsOfFile: base + "/pki/two.pem", encoding: .utf8)))
    #expect(pushed.version != first.version && pushed.nonce != first.nonce)
  }

  @Test func fileNamesAndFetch() async throws {
    let base = "/tmp/pf-sdsf-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    let sds = try await SDSUnderTest.withoutMounts(
      pkiDirectory: base + "/pki", spiffe: Self.spiffe, fileAccess: SecretFileAccess(allowedDirectories: [base]))
    let certName = "file-cert:\(base)/pki/one.pem~\(base)/pki/one.key"
    let rootName = "file-root:\(base)/pki/ca.pem"
    let fetched = try await sds.client(names: [certName, rootName], fetch: true)
    // A missing file fails the fetch with a message naming it.
    let missing = try await sds.client(names: ["file-root:\(base)/nope.pem"], fetch: true)
    await sds.stop()
    #expect(fetched.status == 0, "\(fetched.output)")
    let response = try #require(fetched.responses.first)
    let chain = try #require(response.resource(certName)?.chain)
    let root = try #require(response.resource(rootName)?.root)
    _ = try verifyWithOpenSSL(chain: chain, root: root, in: base)
    #expect(missing.status == 3)
    #expect(missing.output.contains("\(base)/nope.pem"), "\(missing.output)")
  }

  /// `file-cert:`/`file-root:` name paths chosen by whoever reaches the socket: only the allowed directories
  /// are read. Before SecretFileAccess, `/etc/shadow` and the local CA's key were served to any client.
  @Test func fileResourcesOutsideTheAllowedDirectoriesAreRefused() async throws {
    let base = "/tmp/pf-sdsa-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    // The local CA keeps its key beside allowed material; a symlink in the allowed directory points at it.
    let caDirectory = base + "/certs/local-ca"
    let access = SecretFileAccess(
      allowedDirectories: [base + "/certs"], allowedFiles: SecretName.systemRootCandidates,
      forbiddenDirectories: [caDirectory])
    let sds = try await SDSUnderTest.withoutMounts(
      pkiDirectory: base + "/certs", spiffe: Self.spiffe, fileAccess: access)
    let ca = try LocalCertificateAuthority(directory: caDirectory, trustDomain: "cluster.local")
    #expect(symlink(ca.directory + "/root-key.pem", base + "/certs/innocent.key") == 0)
    let shadow = try await sds.client(names: ["file-cert:\(base)/certs/one.pem~/etc/shadow"], fetch: true)
    let caKey = try await sds.client(
      names: ["file-cert:\(base)/certs/local-ca/root-cert.pem~\(base)/certs/local-ca/root-key.pem"], fetch: true)
    let viaLink = try await sds.client(names: ["file-cert:\(base)/certs/one.pem~\(base)/certs/innocent.key"], fetch: true)
    let dotDot = try await sds.client(names: ["file-root:\(base)/certs/../../../etc/passwd"], fetch: true)
    let allowed = try await sds.client(
      names: ["file-cert:\(base)/certs/one.pem~\(base)/certs/one.key", "file-root:\(base)/certs/ca.pem"], fetch: true)
    await sds.stop()
    for refused in [shadow, caKey, viaLink, dotDot] {
      #expect(refused.status == 3, "\(refused.output)")
      #expect(refused.output.contains("is outside the certificate directories"), "\(refused.output)")
      #expect(!refused.output.contains("PRIVATE KEY") && !refused.output.contains("root:x:0"), "\(refused.output)")
    }
    #expect(shadow.output.contains("/etc/shadow"), "\(shadow.output)")
    #expect(allowed.status == 0, "\(allowed.output)")
  }

  /// Every distinct `file-cert:` name used to stay cached forever; now the cache drops what no stream watches.
  @Test func fileSecretsNoStreamWatchesAreEvicted() async throws {
    let base = "/tmp/pf-sdse-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    let sds = try await SDSUnderTest.withoutMounts(
      pkiDirectory: base + "/pki", spiffe: Self.spiffe, fileAccess: SecretFileAccess(allowedDirectories: [base]))
    let baseline = await sds.cache.cachedFileSecretCount
    // Distinct names for the same files: `./` repeated n times in the directory part.
    func name(_ n: Int) -> String {
      let dir = base + "/pki" + String(repeating: "/.", count: n)
      return "file-cert:\(dir)/one.pem~\(dir)/one.key"
    }
    for round in 0..<3 {
      let names = (0..<8).map { name(round * 8 + $0) }
      let streamed = try await sds.client(names: names)
      #expect(streamed.status == 0, "\(streamed.output)")
      #expect(streamed.responses.first?.resources.count == 8)
      let fetched = try await sds.client(names: [name(100 + round)], fetch: true)
      #expect(fetched.status == 0, "\(fetched.output)")
    }
    let settled = await eventually(timeout: .seconds(10)) { await sds.cache.cachedFileSecretCount == baseline }
    let count = await sds.cache.cachedFileSecretCount
    await sds.stop()
    #expect(settled, "\(count) file secrets still cached; baseline \(baseline)")
  }

  /// Key files are created 0600 under a fresh name with O_EXCL|O_NOFOLLOW: a symlink planted at the old,
  /// predictable temporary name (`<path>.tmp-<pid>`) used to receive the key.
  @Test func keyFilesAreWrittenPrivateFromTheFirstByte() throws {
    let base = "/tmp/pf-keys-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    try SecretFiles.createPrivateDirectory(base + "/out")
    func mode(_ path: String) throws -> Int? {
      try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }
    #expect(try mode(base + "/out") == 0o700)
    #expect(symlink(base + "/leak", base + "/out/key.pem.tmp-\(getpid())") == 0)
    let old = umask(0)
    defer { _ = umask(old) }
    try SecretFiles.writeAtomically("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", to: base + "/out/key.pem", mode: 0o600)
    #expect(!FileManager.default.fileExists(atPath: base + "/leak"))
    #expect(try mode(base + "/out/key.pem") == 0o600)
    let type = try FileManager.default.attributesOfItem(atPath: base + "/out/key.pem")[.type] as? FileAttributeType
    #expect(type == .typeRegular)
  }

  @Test func staleSocketIsReplacedAndALiveOneRespected() async throws {
    let base = "/tmp/pf-sdsf-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    let path = base + "/socket"
    try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    let logger = Logger(label: "sds-test")
    // A stale file (nobody listening) is replaced by a listening socket.
    try Data("stale".utf8).write(to: URL(fileURLWithPath: path))
    let first = try #require(
      try UnixSocketListener.listen(
        at: path, owner: nil, respectLiveServer: true, role: "SDS", logger: logger))
    // A live server on the path is left alone.
    #expect(
      try UnixSocketListener.listen(
        at: path, owner: nil, respectLiveServer: true, role: "SDS", logger: logger) == nil)
    close(first)
    // Closed, the socket is stale again and replaced.
    let second = try #require(
      try UnixSocketListener.listen(
        at: path, owner: nil, respectLiveServer: true, role: "SDS", logger: logger))
    close(second)
    #expect(throws: AgentError.self) {
      try UnixSocketListener.listen(
        at: "/tmp/" + String(repeating: "x", count: 120), owner: nil, respectLiveServer: true, role: "SDS",
        logger: logger)
    }
  }
}
