/// The pure parts of the tls_inspector and http_inspector listener filters: decide from the first bytes of
/// a connection what it carries. Each returns `.needMoreData` until it can decide.
package enum InspectionResult: Equatable, Sendable {
  case needMoreData
  case notMatched
  case tls(serverName: String?, alpn: [String])
  case http(String)  // "http/1.0", "http/1.1", "h2c"
}

package enum TLSClientHelloInspector {
  /// Largest ClientHello we wait for (Envoy's tls_inspector default max is 16 KiB + record headers).
  package static let maxBytes = 16 * 1024 + 5 * 4

  package static func inspect(_ bytes: UnsafeRawBufferPointer) -> InspectionResult {
    guard let first = bytes.first else { return .needMoreData }
    guard first == 0x16 else { return .notMatched }
    // Reassemble the handshake message from consecutive handshake records.
    var handshake: [UInt8] = []
    var offset = 0
    while true {
      guard bytes.count >= offset + 5 else { return bytes.count >= maxBytes ? .notMatched : .needMoreData }
      guard bytes[offset] == 0x16, bytes[offset + 1] == 3 else { return .notMatched }
      let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
      guard length > 0, length <= 16 * 1024 + 2048 else { return .notMatched }
      guard bytes.count >= offset + 5 + length else {
        return bytes.count >= maxBytes ? .notMatched : .needMoreData
      }
      handshake.append(contentsOf: bytes[(offset + 5)..<(offset + 5 + length)])
      offset += 5 + length
      if handshake.count >= 4 {
        guard handshake[0] == 1 else { return .notMatched }  // client_hello
        let bodyLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
        if handshake.count >= 4 + bodyLength {
          return parseClientHello(handshake[4..<(4 + bodyLength)])
        }
        if bodyLength > maxBytes { return .notMatched }
      }
    }
  }

  private static func parseClientHello(_ body: ArraySlice<UInt8>) -> InspectionResult {
    var reader = Reader(bytes: body)
    guard reader.skip(2 + 32),  // legacy_version, random
      let sessionIDLength = reader.u8(), reader.skip(Int(sessionIDLength)),
      let suitesLength = reader.u16(), reader.skip(Int(suitesLength)),
      let compressionLength = reader.u8(), reader.skip(Int(compressionLength))
    else { return .notMatched }
    var serverName: String?
    var alpn: [String] = []
    guard let extensionsLength = reader.u16() else { return .tls(serverName: nil, alpn: []) }
    var extensions = Reader(bytes: reader.take(Int(extensionsLength)) ?? [])
    while let type = extensions.u16(), let length = extensions.u16(), let data = extensions.take(Int(length))
    {
      var ext = Reader(bytes: data)
      switch type {
      case 0:  // server_name
        guard let listLength = ext.u16(), var list = ext.take(Int(listLength)).map({ Reader(bytes: $0) })
        else {
          continue
        }
        while let nameType = list.u8(), let nameLength = list.u16(), let name = list.take(Int(nameLength)) {
          if nameType == 0 {
            serverName = String(decoding: name, as: UTF8.self)
            break
          }
        }
      case 16:  // application_layer_protocol_negotiation
        guard let listLength = ext.u16(), var list = ext.take(Int(listLength)).map({ Reader(bytes: $0) })
        else {
          continue
        }
        while let protoLength = list.u8(), let proto = list.take(Int(protoLength)) {
          alpn.append(String(decoding: proto, as: UTF8.self))
        }
      default:
        continue
      }
    }
    return .tls(serverName: serverName, alpn: alpn)
  }

  private struct Reader {
    var bytes: ArraySlice<UInt8>
    init(bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    init(bytes: [UInt8]) { self.bytes = bytes[...] }

    mutating func skip(_ n: Int) -> Bool {
      guard bytes.count >= n else { return false }
      bytes = bytes.dropFirst(n)
      return true
    }
    mutating func u8() -> UInt8? {
      guard let b = bytes.first else { return nil }
      bytes = bytes.dropFirst()
      return b
    }
    mutating func u16() -> UInt16? {
      guard bytes.count >= 2 else { return nil }
      let v = UInt16(bytes[bytes.startIndex]) << 8 | UInt16(bytes[bytes.startIndex + 1])
      bytes = bytes.dropFirst(2)
      return v
    }
    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
      guard bytes.count >= n else { return nil }
      let out = bytes.prefix(n)
      bytes = bytes.dropFirst(n)
      return out
    }
  }
}

package enum HTTPInspector {
  private static let h2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
  /// The request line must arrive within this many bytes.
  package static let maxBytes = 8 * 1024

  package static func inspect(_ bytes: UnsafeRawBufferPointer) -> InspectionResult {
    if bytes.isEmpty { return .needMoreData }
    // HTTP/2 prior knowledge.
    let prefixLength = min(bytes.count, h2Preface.count)
    if bytes.prefix(prefixLength).elementsEqual(h2Preface.prefix(prefixLength)) {
      return prefixLength == h2Preface.count ? .http("h2c") : .needMoreData
    }
    // An HTTP/1 request line: token SP target SP HTTP/1.x CRLF.
    var index = 0
    while index < bytes.count, isTokenChar(bytes[index]) { index += 1 }
    if index == bytes.count { return bytes.count >= maxBytes ? .notMatched : .needMoreData }
    guard index > 0, bytes[index] == UInt8(ascii: " ") else { return .notMatched }
    guard let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
      return bytes.count >= maxBytes ? .notMatched : .needMoreData
    }
    guard lineEnd >= 10, bytes[lineEnd - 1] == UInt8(ascii: "\r") else { return .notMatched }
    let version = Array(bytes[(lineEnd - 9)..<(lineEnd - 1)])
    if version == Array(" HTTP/1.1".utf8.dropFirst()) { return .http("http/1.1") }
    if version == Array(" HTTP/1.0".utf8.dropFirst()) { return .http("http/1.0") }
    return .notMatched
  }

  private static func isTokenChar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
      UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
      UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
      return true
    default:
      return false
    }
  }
}
