/// TLS ClientHello records for tests of the listener filters (no TLS library needed to inspect one).
package enum TestClientHello {
  /// A TLS 1.2-style ClientHello record with SNI and ALPN extensions.
  package static func record(sni: String?, alpn: [String]) -> [UInt8] {
    var extensions: [UInt8] = []
    func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    if let sni {
      let name = Array(sni.utf8)
      let entry = [0] + u16(name.count) + name
      let list = u16(entry.count) + entry
      extensions += u16(0) + u16(list.count) + list
    }
    if !alpn.isEmpty {
      let protocols = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
      let list = u16(protocols.count) + protocols
      extensions += u16(16) + u16(list.count) + list
    }
    var body: [UInt8] = [3, 3] + [UInt8](repeating: 0xab, count: 32) + [0] + u16(2) + [0x13, 0x01] + [1, 0]
    body += u16(extensions.count) + extensions
    let handshake = [1, 0] + u16(body.count) + body
    return [0x16, 3, 1] + u16(handshake.count) + handshake
  }
}
