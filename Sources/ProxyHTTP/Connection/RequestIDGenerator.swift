#if canImport(Glibc)
  internal import Glibc
#endif

/// `x-request-id` values: random (version 4) UUIDs from a buffer of random bytes refilled 256 ids at a time
/// — one read of the kernel's random source per 256 requests instead of two `getrandom` calls per request,
/// as Envoy buffers its random bytes — and
/// formatted without intermediate strings. One per connection; not thread-safe (used on its event loop).
final class RequestIDGenerator {
  private static let idsPerRefill = 256
  /// Opened once per process; concurrent reads from several loops are fine.
  private static let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
  private var buffer = [UInt8](repeating: 0, count: 16 * idsPerRefill)
  private var offset = 16 * idsPerRefill

  func next() -> String {
    if offset == buffer.count { refill() }
    let start = offset
    offset += 16
    return buffer.withUnsafeBufferPointer { bytes in
      String(unsafeUninitializedCapacity: 36) { out in
        let digits: StaticString = "0123456789abcdef"
        var position = 0
        for index in 0..<16 {
          var byte = bytes[start + index]
          if index == 6 { byte = (byte & 0x0F) | 0x40 }  // version 4
          if index == 8 { byte = (byte & 0x3F) | 0x80 }  // RFC 4122 variant
          if index == 4 || index == 6 || index == 8 || index == 10 {
            out[position] = UInt8(ascii: "-")
            position += 1
          }
          out[position] = digits.utf8Start[Int(byte >> 4)]
          out[position + 1] = digits.utf8Start[Int(byte & 0x0F)]
          position += 2
        }
        return position
      }
    }
  }

  private func refill() {
    offset = 0
    let filled = buffer.withUnsafeMutableBytes { raw -> Int in
      var done = 0
      while done < raw.count {
        guard Self.urandom >= 0 else { break }
        let n = read(Self.urandom, raw.baseAddress! + done, raw.count - done)
        if n <= 0 { break }
        done += n
      }
      return done
    }
    if filled < buffer.count {
      var generator = SystemRandomNumberGenerator()
      for index in filled..<buffer.count { buffer[index] = UInt8.random(in: 0...255, using: &generator) }
    }
  }
}
