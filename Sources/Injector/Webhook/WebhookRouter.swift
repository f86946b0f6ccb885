internal import Foundation
package import NIOHTTP1

/// A whole HTTP request as the webhook handler hands it over.
package struct WebhookRequest: Sendable, Equatable {
  package var method: HTTPMethod
  /// The path without the query string.
  package var path: String
  package var contentType: String?
  package var body: [UInt8]

  package init(method: HTTPMethod, path: String, contentType: String?, body: [UInt8]) {
    self.method = method
    self.path = path
    self.contentType = contentType
    self.body = body
  }
}

/// A whole HTTP response: status, content type and body.
package struct WebhookResponse: Sendable, Equatable {
  package var status: HTTPResponseStatus
  package var contentType: String
  package var body: String

  package init(status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8", body: String) {
    self.status = status
    self.contentType = contentType
    self.body = body
  }

  package static func text(_ status: HTTPResponseStatus, _ message: String) -> WebhookResponse {
    WebhookResponse(status: status, body: message + "\n")
  }
}

/// The webhook's routes: `POST /inject` and `/inject/...` (AdmissionReview), `GET /healthz` and `/readyz`.
///
/// `/inject` checks, in order: method (405), an empty body (400), the media type (415, only
/// `application/json` with optional parameters); then every answer is 200 with an AdmissionReview. Other
/// paths are 404. Oversized bodies never get here: the connection handler answers 413 first.
package struct WebhookRouter: Sendable {
  package var reviewer: AdmissionReviewer

  package init(reviewer: AdmissionReviewer) {
    self.reviewer = reviewer
  }

  package func respond(to request: WebhookRequest) -> WebhookResponse {
    switch request.path {
    case "/healthz", "/readyz":
      guard request.method == .GET else {
        return .text(.methodNotAllowed, "\(request.path) accepts GET only")
      }
      return .text(.ok, "ok")
    case _ where request.path == "/inject" || request.path.hasPrefix("/inject/"):
      guard request.method == .POST else {
        return .text(.methodNotAllowed, "\(request.path) accepts POST only")
      }
      guard !request.body.isEmpty else {
        return .text(.badRequest, "no body: POST an AdmissionReview")
      }
      guard Self.isJSON(request.contentType) else {
        return .text(
          .unsupportedMediaType,
          "Content-Type is \"\(request.contentType ?? "")\", expected \"application/json\"")
      }
      let (review, _) = reviewer.review(body: request.body, path: request.path)
      return WebhookResponse(status: .ok, contentType: "application/json", body: review.jsonText)
    default:
      return .text(.notFound, "no route for \(request.path)")
    }
  }

  /// `application/json`, in any case, with or without parameters such as `; charset=utf-8`.
  package static func isJSON(_ contentType: String?) -> Bool {
    guard let contentType else { return false }
    let mediaType = contentType.split(separator: ";", maxSplits: 1).first ?? ""
    return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
  }
}
