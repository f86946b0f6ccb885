import ArgumentParser
import Foundation
import Injector
import Logging

/// `pilotfish webhook`: the sidecar injector as a Kubernetes MutatingWebhook (HTTPS AdmissionReviews).
struct Webhook: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "webhook",
    abstract: "Serve the sidecar-injection MutatingWebhook over HTTPS (POST /inject, GET /healthz, /readyz).",
    discussion: """
      The serving certificate and key are PEM files, reloaded when they change (a rotated Kubernetes \
      secret needs no restart). SIGTERM or SIGINT stops accepting, finishes the requests in flight and exits.
      """
  )

  @Option(name: .customLong("port"), help: "HTTPS port (default 15017).")
  var port = 15017
  @Option(name: .customLong("address"), help: "Address to listen on (default 0.0.0.0).")
  var address = "0.0.0.0"
  @Option(name: .customLong("tls-cert"), help: "PEM certificate chain, leaf first.")
  var tlsCert = "/etc/pilotfish/webhook-tls/tls.crt"
  @Option(name: .customLong("tls-key"), help: "PEM private key of the leaf certificate.")
  var tlsKey = "/etc/pilotfish/webhook-tls/tls.key"
  @OptionGroup var injector: InjectorSettingsOptions
  @Option(name: .customLong("log-level"), help: "trace, debug, info (default), notice, warning, error.")
  var logLevel = "info"

  /// The root command stays synchronous so that `istio-iptables --network-namespace` can move the main thread
  /// before any other thread exists; the server's async work runs to completion from here.
  func run() throws {
    try runAsyncThrowing { try await serve() }
  }

  private func serve() async throws {
    guard (0...65535).contains(port) else {
      throw ValidationError("invalid value \(port) for --port: use 0-65535")
    }
    let logger = try CommandLogging.start(logLevel: logLevel, label: "pilotfish.webhook")
    let server: WebhookServer
    do {
      let settings = try injector.settings()
      server = try WebhookServer(
        configuration: .init(
          host: address, port: port, certificateChainPath: tlsCert, privateKeyPath: tlsKey),
        settings: settings, logger: logger)
    } catch let error as ManifestError {
      throw fail(error.message)
    } catch {
      throw fail("\(error)")
    }
    do {
      try await server.runUntilSignalled()
    } catch {
      throw fail("\(error)")
    }
  }

  /// Prints one error line on standard error; the returned exit code ends the process with status 1.
  private func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("pilotfish webhook: error: \(message)\n".utf8))
    return ExitCode.failure
  }
}
