internal import NIOCore
internal import NIOHTTP1
internal import NIOSSL

extension ChannelPipeline.SynchronousOperations {
  /// TLS (with the reloader's current identity), HTTP/1.1 with pipelining assistance and error handling
  /// (which also turns `ChannelShouldQuiesceEvent` into a close after the response in flight), then the
  /// webhook handler.
  func configureWebhookPipeline(
    certificates: CertificateReloader, router: WebhookRouter, maxBodyBytes: Int,
    limits: WebhookServer.Limits = .init()
  ) throws {
    try addHandler(NIOSSLServerHandler(context: certificates.context()))
    try configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
    try addHandler(WebhookHTTPHandler(router: router, maxBodyBytes: maxBodyBytes, limits: limits))
  }
}
