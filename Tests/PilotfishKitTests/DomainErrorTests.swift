import PilotfishKit
import Testing

enum SampleCode: DomainErrorCode {
  case one
  case two
}

enum ParenthesizedCode: DomainErrorCode {
  case only

  static func describe(_ message: String, cause: any Error) -> String { "\(message) (\(cause))" }
}

typealias SampleError = DomainError<SampleCode>

@Suite struct DomainErrorTests {
  struct Cause: Error, CustomStringConvertible {
    var description: String { "the cause" }
  }

  @Test func equalityIgnoresTheCause() {
    #expect(SampleError(.one, "m", cause: Cause()) == SampleError(.one, "m"))
    #expect(SampleError(.one, "m") != SampleError(.two, "m"))
    #expect(SampleError(.one, "m") != SampleError(.one, "n"))
  }

  @Test func descriptionShowsTheCauseAsTheDomainSays() {
    #expect(SampleError(.one, "m").description == "m")
    #expect(SampleError(.one, "m", cause: Cause()).description == "m: the cause")
    #expect(DomainError<ParenthesizedCode>(.only, "m", cause: Cause()).description == "m (the cause)")
  }

  @Test func codeIsReachableThroughTheDomainName() {
    let code: SampleError.Code = .two
    #expect(SampleError(code, "m").code == .two)
  }
}
