import Foundation
import PilotfishKit
import Testing

@testable import Injector

/// Golden tests of `PodInjector`: each input injected in its context must print exactly as its golden file
/// (regenerate with `PILOTFISH_UPDATE_GOLDEN=1`), injecting again must change nothing, and uninjecting must
/// give the input back.
@Suite("Pod injection goldens")
struct PodInjectorGoldenTests {
  static let updating = ProcessInfo.processInfo.environment["PILOTFISH_UPDATE_GOLDEN"] == "1"

  @Test("every golden input has a case", .tags(.injectionGolden))
  func everyInputHasACase() throws {
    let files = try FileManager.default.contentsOfDirectory(atPath: InjectionGoldenCase.directory.path)
    let inputs = Set(files.filter { $0.hasSuffix(".in.yaml") }.map { String($0.dropLast(".in.yaml".count)) })
    #expect(inputs == Set(InjectionGoldenCase.all.map(\.name)))
  }

  @Test(
    "injected output matches the golden file", .tags(.injectionGolden), arguments: InjectionGoldenCase.all)
  func matchesGolden(_ golden: InjectionGoldenCase) throws {
    let outcome = try golden.inject(golden.input())
    let text = InjectionGoldenCase.text(outcome)
    if Self.updating {
      try text.write(to: golden.goldenURL, atomically: true, encoding: .utf8)
      return
    }
    let expected = try String(contentsOf: golden.goldenURL, encoding: .utf8)
    #expect(
      text == expected,
      "\(golden.name): output differs from \(golden.goldenURL.lastPathComponent); rerun with PILOTFISH_UPDATE_GOLDEN=1 and review the diff"
    )
    if golden.name.hasPrefix("skip-") {
      guard case .skipped = outcome else {
        Issue.record("\(golden.name) should be skipped")
        return
      }
    }
  }

  @Test("injecting an injected pod changes nothing", arguments: InjectionGoldenCase.all)
  func reinjectionIsIdempotent(_ golden: InjectionGoldenCase) throws {
    guard case .injected(let once) = try golden.inject(golden.input()) else { return }
    guard case .injected(let twice) = try golden.inject(once) else {
      Issue.record("\(golden.name): the injected pod was skipped on re-injection")
      return
    }
    #expect(twice.jsonText == once.jsonText)
    #expect(twice.prettyJSONText == once.prettyJSONText)
  }

  @Test("uninject(inject(p)) == p", arguments: InjectionGoldenCase.all)
  func uninjectInvertsInject(_ golden: InjectionGoldenCase) throws {
    let input = try golden.input()
    guard case .injected(let injected) = try golden.inject(input) else { return }
    let restored = golden.uninject(injected)
    #expect(restored == input)
    #expect(restored.jsonText == input.jsonText)
  }

  @Test("uninject leaves a pod without a sidecar alone", arguments: InjectionGoldenCase.all)
  func uninjectOfPlainPodIsIdentity(_ golden: InjectionGoldenCase) throws {
    let input = try golden.input()
    #expect(golden.uninject(input) == input)
  }

  @Test("the golden outputs are read back as what was written", .enabled(if: !updating))
  func goldenOutputsParse() throws {
    for golden in InjectionGoldenCase.all where !golden.name.hasPrefix("skip-") {
      let text = try String(contentsOf: golden.goldenURL, encoding: .utf8)
      guard case .injected(let injected) = try golden.inject(golden.input()) else {
        Issue.record("\(golden.name) was not injected")
        continue
      }
      #expect(try JSONValue.parseYAML(text) == injected, "\(golden.name)")
    }
  }
}

extension Tag {
  @Tag static var injectionGolden: Self
}
