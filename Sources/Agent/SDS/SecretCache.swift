package import Foundation
package import Logging
internal import ServiceLifecycle

/// Where the workload's `default` certificate and `ROOTCA` come from (Istio's precedence is decided by
/// ``SDSSettings``).
package enum WorkloadCertificateSource: Sendable {
  /// Mounted files: `./etc/certs/*.pem` or the workload-spiffe-credentials directory. Watched.
  case files(chainPath: String, keyPath: String, rootPath: String)
  /// A certificate authority (Istio's, or the local one) issues the certificate; rotated before expiry.
  case issuer(any WorkloadCertificateIssuer, WorkloadIdentity, description: String)
}

/// When an issued certificate is replaced: Istio's `rotateTime` — at `gracePeriodRatio` of the lifetime
/// before expiry (half-way by default), jittered by ±`jitter` of the lifetime.
package struct SecretRotationPolicy: Sendable, Equatable {
  /// SECRET_TTL: the validity asked of the CA.
  package var ttl: Duration = .seconds(24 * 3600)
  /// SECRET_GRACE_PERIOD_RATIO.
  package var gracePeriodRatio = 0.5
  /// Istio's fixed jitter ratio.
  package var jitter = 0.01

  package init() {}

  /// Seconds from `now` until the certificate created at `createdAt` and expiring at `notAfter` is replaced;
  /// `random` is uniform in 0..<1 and `sign` one of -1, 0, 1.
  package func rotationDelay(createdAt: Date, notAfter: Date, now: Date, random: Double, sign: Int) -> Double {
    let lifetime = notAfter.timeIntervalSince(createdAt)
    let ratio = min(1, max(0, gracePeriodRatio + random * jitter * Double(sign)))
    let rotateAt = notAfter.addingTimeInterval(-ratio * lifetime)
    return max(0, rotateAt.timeIntervalSince(now))
  }
}

/// The agent's secrets, as the SDS server serves them: generated on first request, cached, rotated before
/// they expire, re-read when their files change; every change is announced to the subscribed SDS streams
/// (which push it if they watch that name). Private keys stay in memory unless OUTPUT_CERTS asks for them.
package actor SecretCache: Service {
  private let source: WorkloadCertificateSource
  private let policy: SecretRotationPolicy
  private let outputDirectory: String?
  private let fileAccess: SecretFileAccess
  private let pollInterval: Duration
  private let logger: Logger

  private var issued: IssuedCertificate?
  private var issuing: Task<IssuedCertificate, any Error>?
  private var rotateAt: Date?
  private var retryDelay: Duration = .milliseconds(500)
  /// A request for the issued certificate failed: the streams that asked are told when it arrives.
  private var announceWhenIssued = false
  /// File-backed secrets served so far, with the bytes they were built from (compared on every poll).
  /// `file-cert:`/`file-root:` entries live only while a stream watches them (``evictUnwatched()``).
  private var fileSecrets: [SecretName: (contents: [String], secret: WorkloadSecret)] = [:]
  private var subscribers: [Int: AsyncStream<SecretName>.Continuation] = [:]
  /// The names each subscribed stream watches.
  private var watched: [Int: Set<SecretName>] = [:]
  private var nextSubscriber = 0

  package init(
    source: WorkloadCertificateSource, policy: SecretRotationPolicy = .init(), outputDirectory: String? = nil,
    fileAccess: SecretFileAccess = .systemRootsOnly, pollInterval: Duration = .milliseconds(500), logger: Logger
  ) {
    self.source = source
    self.policy = policy
    self.outputDirectory = outputDirectory
    self.fileAccess = fileAccess
    self.pollInterval = pollInterval
    self.logger = logger
  }

  // MARK: Serving

  /// The secret called `name`, generated (issued or read) if it is not cached.
  package func secret(_ name: SecretName) async throws(AgentError) -> WorkloadSecret {
    switch (name, source) {
    case (.workloadCertificate, .issuer):
      let certificate = try await currentCertificate()
      return .tlsCertificate(chainPEM: certificate.certificateChainPEM, privateKeyPEM: certificate.privateKeyPEM)
    case (.rootCertificate, .issuer):
      return .validationContext(trustedCAPEM: try await currentCertificate().rootCertificatePEM)
    default:
      if let cached = fileSecrets[name] { return cached.secret }
      let (contents, secret) = try Self.load(name, source: source, access: fileAccess)
      fileSecrets[name] = (contents, secret)
      return secret
    }
  }

  /// A stream of the names whose secret changed; ends when `unsubscribe` is called.
  package func subscribe() -> (id: Int, changes: AsyncStream<SecretName>) {
    let (stream, continuation) = AsyncStream<SecretName>.makeStream(bufferingPolicy: .bufferingNewest(64))
    nextSubscriber += 1
    subscribers[nextSubscriber] = continuation
    return (nextSubscriber, stream)
  }

  package func unsubscribe(_ id: Int) {
    subscribers.removeValue(forKey: id)?.finish()
    watched.removeValue(forKey: id)
    evictUnwatched()
  }

  /// Records the names stream `id` now watches (its whole list, as xDS requests carry it); file secrets no
  /// stream watches any more are dropped.
  package func watch(_ id: Int, names: [String]) {
    watched[id] = Set(names.compactMap(SecretName.init))
    evictUnwatched()
  }

  /// Drops `file-cert:`/`file-root:` secrets that no stream watches (after a fetch, a closed stream, or an
  /// unsubscribe), so a client cycling through names cannot grow the cache without bound. The workload's
  /// own mounted `default`/`ROOTCA` stay.
  package func evictUnwatched() {
    let inUse = watched.values.reduce(into: Set<SecretName>()) { $0.formUnion($1) }
    fileSecrets = fileSecrets.filter { name, _ in
      switch name {
      case .workloadCertificate, .rootCertificate: true
      case .fileCertificate, .fileRoot, .systemRoots: inUse.contains(name)
      }
    }
  }

  /// How many file-backed secrets are cached (for tests and the log).
  package var cachedFileSecretCount: Int { fileSecrets.count }

  private func announce(_ name: SecretName) {
    for continuation in subscribers.values { continuation.yield(name) }
  }

  // MARK: Issued certificates

  private func currentCertificate() async throws(AgentError) -> IssuedCertificate {
    if let issued { return issued }
    do {
      return try await issue()
    } catch let error as AgentError {
      announceWhenIssued = true
      throw error
    } catch {
      announceWhenIssued = true
      throw AgentError(.identity, "certificate issuance failed", cause: error)
    }
  }

  /// Issues a new certificate, sharing one in-flight request among all callers.
  private func issue() async throws -> IssuedCertificate {
    if let issuing { return try await issuing.value }
    guard case .issuer(let issuer, let identity, let description) = source else {
      throw AgentError(.identity, "no certificate authority is configured")
    }
    let ttl = policy.ttl
    let logger = self.logger
    let task = Task {
      logger.info(
        "requesting a workload certificate",
        metadata: ["agent.identity.spiffe": "\(identity.spiffeID)", "agent.identity.ca": "\(description)"])
      return try await issuer.issue(for: identity, ttl: ttl)
    }
    issuing = task
    defer { issuing = nil }
    let certificate = try await task.value
    let previousRoot = issued?.rootCertificatePEM
    issued = certificate
    let delay = policy.rotationDelay(
      createdAt: Date(), notAfter: certificate.notAfter, now: Date(), random: Double.random(in: 0..<1),
      sign: Int.random(in: -1...1))
    rotateAt = Date().addingTimeInterval(delay)
    logger.info(
      "workload certificate issued",
      metadata: [
        "agent.identity.spiffe": "\(identity.spiffeID)", "agent.identity.not_after": "\(certificate.notAfter)",
        "agent.identity.rotate_in_s": "\(Int(delay))",
      ])
    writeOutputCertificates(certificate)
    if previousRoot != nil || announceWhenIssued {
      announce(.workloadCertificate)
      if previousRoot != certificate.rootCertificatePEM { announce(.rootCertificate) }
      announceWhenIssued = false
    }
    return certificate
  }

  /// OUTPUT_CERTS: the issued chain, key and root written to a directory (Istio's file names).
  private func writeOutputCertificates(_ certificate: IssuedCertificate) {
    guard let outputDirectory else { return }
    do {
      try SecretFiles.createPrivateDirectory(outputDirectory)
      try SecretFiles.writeAtomically(
        certificate.certificateChainPEM, to: outputDirectory + "/cert-chain.pem", mode: 0o644)
      try SecretFiles.writeAtomically(certificate.privateKeyPEM, to: outputDirectory + "/key.pem", mode: 0o600)
      try SecretFiles.writeAtomically(
        certificate.rootCertificatePEM, to: outputDirectory + "/root-cert.pem", mode: 0o644)
    } catch {
      logger.error(
        "cannot write OUTPUT_CERTS", metadata: ["agent.identity.output": "\(outputDirectory)", "error": "\(error)"])
    }
  }

  /// Re-issues when the rotation time has come; a failure is retried with backoff (the old certificate
  /// stays in use until it expires).
  private func rotateIfDue(now: Date) async {
    guard let rotateAt, now >= rotateAt else { return }
    do {
      _ = try await issue()
      retryDelay = .milliseconds(500)
    } catch {
      logger.error(
        "certificate rotation failed; retrying", metadata: ["error": "\(error)", "agent.identity.retry": "\(retryDelay)"])
      self.rotateAt = now.addingTimeInterval(retryDelay.seconds)
      retryDelay = min(retryDelay * 2, .seconds(60))
    }
  }

  /// Issues the first certificate ahead of the first request (Istio pre-warms `default` too), retrying
  /// with backoff until it works or the agent stops.
  private func prewarm() async {
    guard case .issuer = source else { return }
    var delay: Duration = .milliseconds(500)
    while !Task.isCancelled {
      do {
        _ = try await currentCertificate()
        return
      } catch {
        logger.error("cannot obtain the workload certificate; retrying", metadata: ["error": "\(error)"])
      }
      try? await Task.sleep(for: delay)
      delay = min(delay * 2, .seconds(30))
    }
  }

  // MARK: Files

  /// Re-reads every file-backed secret served so far; a changed, valid file replaces the secret and is
  /// announced. A changed but invalid file (half-written, wrong kind) is logged and the old secret kept.
  private func pollFiles() {
    for (name, cached) in fileSecrets {
      guard let contents = try? Self.contents(of: name, source: source, access: fileAccess),
        contents != cached.contents
      else {
        continue
      }
      do {
        let (fresh, secret) = try Self.load(name, source: source, access: fileAccess)
        fileSecrets[name] = (fresh, secret)
        logger.info("certificate file changed; pushing", metadata: ["agent.sds.resource": "\(name)"])
        announce(name)
      } catch {
        logger.warning(
          "certificate file changed but is not usable; keeping the previous secret",
          metadata: ["agent.sds.resource": "\(name)", "error": "\(error)"])
      }
    }
  }

  /// The files behind a file-backed name, in a fixed order.
  private static func paths(
    of name: SecretName, source: WorkloadCertificateSource, access: SecretFileAccess
  ) throws(AgentError) -> [String] {
    switch (name, source) {
    case (.workloadCertificate, .files(let chain, let key, _)): return [chain, key]
    case (.rootCertificate, .files(_, _, let root)): return [root]
    case (.fileCertificate(let chain, let key), _):
      // Client-named paths: only inside the directories the operator allowed (SecretFileAccess).
      try access.check(chain, resource: name)
      try access.check(key, resource: name)
      return [chain, key]
    case (.fileRoot(let path), _):
      try access.check(path, resource: name)
      return [path]
    case (.systemRoots, _):
      guard let path = SecretName.systemRootCandidates.first(where: { FileManager.default.isReadableFile(atPath: $0) })
      else {
        throw AgentError(.identity, "file-root:system: no OS CA bundle found (looked at \(SecretName.systemRootCandidates.joined(separator: ", ")))")
      }
      return [path]
    default:
      throw AgentError(.identity, "\(name): not served from files")
    }
  }

  private static func contents(
    of name: SecretName, source: WorkloadCertificateSource, access: SecretFileAccess
  ) throws(AgentError) -> [String] {
    try paths(of: name, source: source, access: access).map { (path) throws(AgentError) in
      try SecretFiles.read(path, role: "certificate material")
    }
  }

  private static func load(
    _ name: SecretName, source: WorkloadCertificateSource, access: SecretFileAccess
  ) throws(AgentError) -> ([String], WorkloadSecret) {
    let paths = try paths(of: name, source: source, access: access)
    if paths.count == 2 {
      let chain = try SecretFiles.read(paths[0], role: "certificate chain")
      let key = try SecretFiles.read(paths[1], role: "private key")
      try SecretFiles.validateCertificates(chain, path: paths[0], role: "certificate chain")
      try SecretFiles.validatePrivateKey(key, path: paths[1])
      return ([chain, key], .tlsCertificate(chainPEM: chain, privateKeyPEM: key))
    }
    let roots = try SecretFiles.read(paths[0], role: "root certificates")
    try SecretFiles.validateCertificates(roots, path: paths[0], role: "root certificates")
    return ([roots], .validationContext(trustedCAPEM: roots))
  }

  // MARK: Service

  /// Pre-warms the workload certificate, then polls files and rotation deadlines until shutdown.
  package func run() async throws {
    await cancelWhenGracefulShutdown {
      await self.loop()
    }
    for continuation in subscribers.values { continuation.finish() }
    subscribers.removeAll()
  }

  private func loop() async {
    if case .files = source {
      // Load (and validate) the mounted files now, so a broken mount is logged at start-up.
      for name in [SecretName.workloadCertificate, .rootCertificate] {
        do {
          _ = try await secret(name)
        } catch {
          logger.error("cannot load the mounted workload certificate", metadata: ["error": "\(error)"])
        }
      }
    }
    await prewarm()
    while !Task.isCancelled {
      pollFiles()
      await rotateIfDue(now: Date())
      try? await Task.sleep(for: pollInterval)
    }
  }
}

extension Duration {
  /// The duration in (fractional) seconds.
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
