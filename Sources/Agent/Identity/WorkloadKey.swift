internal import Crypto
internal import Foundation
internal import SwiftASN1
internal import X509
internal import _CryptoExtras

/// Which key a workload certificate gets, from Istio's variables: RSA (`WORKLOAD_RSA_KEY_SIZE`, default 2048,
/// at least 2048) unless `ECC_SIGNATURE_ALGORITHM=ECDSA`, then `ECC_CURVE` P256 (default) or P384;
/// `PKCS8_KEY=true` asks for PKCS#8 PEM; otherwise keys are written as Istio writes them: `RSA PRIVATE KEY`
/// (PKCS#1) or `EC PRIVATE KEY` (SEC 1).
package struct WorkloadKeyOptions: Sendable, Equatable {
  package enum Algorithm: Sendable, Equatable {
    case rsa(bits: Int)
    case ecdsaP256
    case ecdsaP384
  }

  package var algorithm: Algorithm = .rsa(bits: 2048)
  package var pkcs8 = false

  package init(algorithm: Algorithm = .rsa(bits: 2048), pkcs8: Bool = false) {
    self.algorithm = algorithm
    self.pkcs8 = pkcs8
  }

  package static func resolve(environment env: [String: String]) throws(AgentError) -> WorkloadKeyOptions {
    var options = WorkloadKeyOptions()
    if let text = env["PKCS8_KEY"], !text.isEmpty {
      switch text.lowercased() {
      case "true", "1", "t": options.pkcs8 = true
      case "false", "0", "f": options.pkcs8 = false
      default: throw AgentError(.invalidEnvironment, "PKCS8_KEY: expected true or false, got \"\(text)\"")
      }
    }
    if let algorithm = env["ECC_SIGNATURE_ALGORITHM"], !algorithm.isEmpty {
      guard algorithm == "ECDSA" else {
        throw AgentError(
          .invalidEnvironment, "ECC_SIGNATURE_ALGORITHM: only ECDSA is supported, got \"\(algorithm)\"")
      }
      switch env["ECC_CURVE"] ?? "" {
      case "", "P256": options.algorithm = .ecdsaP256
      case "P384": options.algorithm = .ecdsaP384
      case let other:
        throw AgentError(.invalidEnvironment, "ECC_CURVE: expected P256 or P384, got \"\(other)\"")
      }
      return options
    }
    if let text = env["WORKLOAD_RSA_KEY_SIZE"], !text.isEmpty {
      guard let bits = Int(text), bits >= 2048, bits <= 8192 else {
        throw AgentError(
          .invalidEnvironment, "WORKLOAD_RSA_KEY_SIZE: expected 2048 to 8192 bits, got \"\(text)\"")
      }
      options.algorithm = .rsa(bits: bits)
    }
    return options
  }
}

/// A freshly generated workload key and what a CA needs from it.
struct WorkloadKey {
  let privateKey: Certificate.PrivateKey
  let pem: String
  let signatureAlgorithm: Certificate.SignatureAlgorithm

  init(_ options: WorkloadKeyOptions) throws {
    switch options.algorithm {
    case .rsa(let bits):
      let key = try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
      privateKey = .init(key)
      pem = options.pkcs8 ? key.pkcs8PEMRepresentation : key.pemRepresentation
      signatureAlgorithm = .sha256WithRSAEncryption
    case .ecdsaP256:
      let key = P256.Signing.PrivateKey()
      privateKey = .init(key)
      pem = try Self.ecPEM(
        options, pkcs8: key.pemRepresentation, scalar: key.rawRepresentation,
        publicKey: key.publicKey.x963Representation, curve: ASN1ObjectIdentifier.NamedCurves.secp256r1)
      signatureAlgorithm = .ecdsaWithSHA256
    case .ecdsaP384:
      let key = P384.Signing.PrivateKey()
      privateKey = .init(key)
      pem = try Self.ecPEM(
        options, pkcs8: key.pemRepresentation, scalar: key.rawRepresentation,
        publicKey: key.publicKey.x963Representation, curve: ASN1ObjectIdentifier.NamedCurves.secp384r1)
      signatureAlgorithm = .ecdsaWithSHA384
    }
  }

  /// An EC key's PEM: swift-crypto's PKCS#8 when `PKCS8_KEY` asks for it, else SEC 1.
  private static func ecPEM(
    _ options: WorkloadKeyOptions, pkcs8: String, scalar: Data, publicKey: Data,
    curve: ASN1ObjectIdentifier
  ) throws -> String {
    options.pkcs8 ? pkcs8 : try sec1PEM(scalar, publicKey: publicKey, curve: curve)
  }

  /// SEC 1 `ECPrivateKey` (RFC 5915: version 1, the scalar, the named curve, the public point) as
  /// `EC PRIVATE KEY` PEM, the form Go and OpenSSL write; swift-crypto writes EC keys only as PKCS#8.
  static func sec1PEM(
    _ scalar: some DataProtocol, publicKey: some DataProtocol, curve: ASN1ObjectIdentifier
  ) throws -> String {
    var serializer = DER.Serializer()
    try serializer.appendConstructedNode(identifier: .sequence) { coder in
      try coder.serialize(1)
      try coder.serialize(ASN1OctetString(contentBytes: ArraySlice(scalar)))
      try coder.serialize(curve, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
      let point = ASN1BitString(bytes: ArraySlice(publicKey))
      try coder.serialize(point, explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
    }
    return PEMDocument(type: "EC PRIVATE KEY", derBytes: serializer.serializedBytes).pemString
  }

  /// A PEM certificate signing request with an empty subject and the SPIFFE id as its URI SAN (Istio's).
  func signingRequest(for identity: WorkloadIdentity) throws -> String {
    let extensions = try Certificate.Extensions {
      SubjectAlternativeNames([.uniformResourceIdentifier(identity.spiffeID)])
    }
    let request = try CertificateSigningRequest(
      version: .v1, subject: DistinguishedName(), privateKey: privateKey,
      attributes: .init([try .init(ExtensionRequest(extensions: extensions))]),
      signatureAlgorithm: signatureAlgorithm)
    return try request.serializeAsPEM().pemString + "\n"
  }
}
