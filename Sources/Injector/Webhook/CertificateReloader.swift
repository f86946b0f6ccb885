internal import Foundation
package import Logging
package import NIOSSL
internal import Synchronization

/// The webhook's serving identity (PEM certificate chain + PEM private key), reloaded when the files change.
///
/// Invariant: ``context()`` always returns a context built from a certificate chain and key that were
/// readable and matched when they were loaded. A change is noticed from the files' identity (inode, size,
/// modification time), checked on every call and by ``reloadIfChanged()``; if the new files cannot be used
/// the previous context stays and the reason is logged once per change.
package final class CertificateReloader: Sendable {
  package let certificateChainPath: String
  package let privateKeyPath: String
  private let logger: Logger

  private struct Stamp: Equatable {
    var certificate: [String]
    var key: [String]
  }

  private struct State {
    var context: NIOSSLContext
    var serial: String
    /// The files' identity when they were last tried, successfully or not.
    var tried: Stamp
  }

  private let state: Mutex<State>

  /// Loads the files now; fails with a ``WebhookError`` naming the file when they are unusable.
  package init(certificateChainPath: String, privateKeyPath: String, logger: Logger) throws(WebhookError) {
    self.certificateChainPath = certificateChainPath
    self.privateKeyPath = privateKeyPath
    self.logger = logger
    let stamp = Self.stamp(certificateChainPath, privateKeyPath)
    let (context, serial) = try Self.load(
      certificateChainPath: certificateChainPath, privateKeyPath: privateKeyPath)
    state = Mutex(State(context: context, serial: serial, tried: stamp))
    logger.info(
      "loaded webhook certificate",
      metadata: [
        "injector.webhook.certificate": "\(certificateChainPath)", "injector.webhook.serial": "\(serial)",
      ])
  }

  /// The serial number (hex) of the leaf certificate in use.
  package var serial: String { state.withLock { $0.serial } }

  /// The context for a new connection, reloaded first if the files changed.
  package func context() -> NIOSSLContext {
    reloadIfChanged()
    return state.withLock { $0.context }
  }

  /// Reloads if either file changed since it was last tried. Returns true if a new context is in use.
  @discardableResult
  package func reloadIfChanged() -> Bool {
    let stamp = Self.stamp(certificateChainPath, privateKeyPath)
    return state.withLock { state in
      guard stamp != state.tried else { return false }
      state.tried = stamp
      do {
        let (context, serial) = try Self.load(
          certificateChainPath: certificateChainPath, privateKeyPath: privateKeyPath)
        state.context = context
        state.serial = serial
        logger.info(
          "reloaded webhook certificate",
          metadata: [
            "injector.webhook.certificate": "\(certificateChainPath)", "injector.webhook.serial": "\(serial)",
          ])
        return true
      } catch {
        logger.error(
          "keeping the previous webhook certificate: \(error)",
          metadata: [
            "injector.webhook.certificate": "\(certificateChainPath)",
            "injector.webhook.serial": "\(state.serial)",
          ])
        return false
      }
    }
  }

  private static func stamp(_ paths: String...) -> Stamp {
    let parts = paths.map { path -> [String] in
      guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
        return ["missing"]
      }
      return [
        "\(attributes[.systemFileNumber] ?? "")", "\(attributes[.size] ?? "")",
        "\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)",
      ]
    }
    return Stamp(certificate: parts[0], key: parts[1])
  }

  private static func readFile(_ path: String, what: String) throws(WebhookError) -> [UInt8] {
    guard FileManager.default.fileExists(atPath: path) else {
      throw WebhookError(.certificate, "\(what) \(path): no such file")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw WebhookError(.certificate, "\(what) \(path): cannot be read (permissions?)")
    }
    return Array(data)
  }

  private static func load(
    certificateChainPath: String, privateKeyPath: String
  ) throws(WebhookError) -> (NIOSSLContext, String) {
    let chainBytes = try readFile(certificateChainPath, what: "certificate chain")
    let keyBytes = try readFile(privateKeyPath, what: "private key")
    let chain: [NIOSSLCertificate]
    do {
      chain = try NIOSSLCertificate.fromPEMBytes(chainBytes)
    } catch {
      throw WebhookError(
        .certificate, "certificate chain \(certificateChainPath) is not PEM certificates", cause: error)
    }
    guard let leaf = chain.first else {
      throw WebhookError(.certificate, "certificate chain \(certificateChainPath) holds no certificate")
    }
    let key: NIOSSLPrivateKey
    do {
      key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
    } catch {
      throw WebhookError(.certificate, "private key \(privateKeyPath) is not a PEM private key", cause: error)
    }
    var configuration = TLSConfiguration.makeServerConfiguration(
      certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    configuration.minimumTLSVersion = .tlsv12
    do {
      let context = try NIOSSLContext(configuration: configuration)
      return (context, leaf.serialNumber.map { String(format: "%02x", $0) }.joined())
    } catch {
      throw WebhookError(
        .certificate,
        "certificate \(certificateChainPath) and key \(privateKeyPath) do not form a TLS identity",
        cause: error)
    }
  }
}
