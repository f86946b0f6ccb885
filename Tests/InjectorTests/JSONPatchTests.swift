import Foundation
import PilotfishKit
import TestSupport
import Testing

@testable import Injector

/// RFC 6902 patches from diffs: round trips (`apply(diff(a, b), a) == b`), pointer escaping, arrays growing
/// and shrinking, and the patch read back by Python's `jsonpatch` giving the same document.
@Suite("JSON Patch")
struct JSONPatchTests {
  static let pod: JSONValue = [
    "apiVersion": "v1", "kind": "Pod",
    "metadata": ["name": "web", "labels": ["app": "web"], "annotations": ["a/b": "1", "x~y": "2"]],
    "spec": [
      "containers": [
        ["name": "app", "image": "nginx:1.25", "ports": [["containerPort": 80]]],
        ["name": "side", "image": "busybox", "args": ["sleep", "3600"]],
      ],
      "volumes": [["name": "data", "emptyDir": [:]]],
    ],
  ]

  static var injectedPod: JSONValue {
    var pod = Self.pod
    pod["metadata"]?["annotations"]?["a/b"] = "changed"
    pod["metadata"]?["annotations"]?["x~y"] = nil
    pod["metadata"]?["annotations"]?["sidecar.istio.io/status"] = "{\"containers\":[\"istio-proxy\"]}"
    pod["metadata"]?["labels"]?["security.istio.io/tlsMode"] = "istio"
    pod["spec"]?["containers"] = [
      ["name": "app", "image": "nginx:1.25", "ports": [["containerPort": 80], ["containerPort": 15090]]],
      ["name": "side", "image": "busybox"],
      ["name": "istio-proxy", "image": "pilotfish", "args": ["proxy", "sidecar"]],
    ]
    pod["spec"]?["initContainers"] = [["name": "istio-init", "image": "pilotfish"]]
    pod["spec"]?["volumes"] = []
    return pod
  }

  @Test func equalDocumentsGiveAnEmptyPatch() {
    #expect(JSONPatch.diff(from: Self.pod, to: Self.pod).isEmpty)
    #expect(JSONPatch.diff(from: Self.pod, to: Self.pod).jsonText == "[]")
  }

  @Test func roundTripOfAnInjection() throws {
    let patch = JSONPatch.diff(from: Self.pod, to: Self.injectedPod)
    #expect(try patch.apply(to: Self.pod).canonical == Self.injectedPod.canonical)
    let reverse = JSONPatch.diff(from: Self.injectedPod, to: Self.pod)
    #expect(try reverse.apply(to: Self.injectedPod).canonical == Self.pod.canonical)
  }

  @Test func keysAreEscapedInPointers() throws {
    let source: JSONValue = ["a/b": 1, "m~n": ["~/": true], "plain": "x"]
    let target: JSONValue = ["a/b": 2, "m~n": ["~/": false, "new/~key": nil], "plain": "x"]
    let patch = JSONPatch.diff(from: source, to: target)
    #expect(
      patch.jsonText
        == #"[{"op":"replace","path":"/a~1b","value":2},{"op":"replace","path":"/m~0n/~0~1","value":false},"#
        + #"{"op":"add","path":"/m~0n/new~1~0key","value":null}]"#)
    #expect(try patch.apply(to: source) == target)
    #expect(try JSONPointer(parsing: "/m~0n/new~1~0key").tokens == ["m~n", "new/~key"])
    #expect(JSONPointer(["~1", "/"]).description == "/~01/~1")
  }

  @Test func arraysGrowAtTheirIndices() throws {
    let source: JSONValue = ["list": [1, 2]]
    let target: JSONValue = ["list": [1, 3, 4, 5]]
    let patch = JSONPatch.diff(from: source, to: target)
    #expect(
      patch.operations == [
        .replace(path: JSONPointer(["list", "1"]), value: 3),
        .add(path: JSONPointer(["list", "2"]), value: 4),
        .add(path: JSONPointer(["list", "3"]), value: 5),
      ])
    #expect(try patch.apply(to: source) == target)
  }

  @Test func arraysShrinkFromTheEndBackwards() throws {
    let source: JSONValue = ["list": ["a", "b", "c", "d", "e"]]
    let target: JSONValue = ["list": ["a", "x"]]
    let patch = JSONPatch.diff(from: source, to: target)
    #expect(
      patch.operations == [
        .replace(path: JSONPointer(["list", "1"]), value: "x"),
        .remove(path: JSONPointer(["list", "4"])),
        .remove(path: JSONPointer(["list", "3"])),
        .remove(path: JSONPointer(["list", "2"])),
      ])
    #expect(try patch.apply(to: source) == target)
    #expect(try JSONPatch.diff(from: source, to: ["list": []]).apply(to: source) == ["list": []])
  }

  @Test func objectsInArraysArePatchedInPlace() {
    let source: JSONValue = ["containers": [["name": "app", "image": "a"]]]
    let target: JSONValue = ["containers": [["name": "app", "image": "b"]]]
    #expect(
      JSONPatch.diff(from: source, to: target).operations == [
        .replace(path: JSONPointer(["containers", "0", "image"]), value: "b")
      ])
  }

  @Test func typeChangesAndTheRootAreReplaced() throws {
    #expect(
      JSONPatch.diff(from: ["a": [1]], to: ["a": ["k": 1]]).operations == [
        .replace(path: JSONPointer(["a"]), value: ["k": 1])
      ])
    #expect(
      JSONPatch.diff(from: [1], to: ["k": 1]).jsonText == #"[{"op":"replace","path":"","value":{"k":1}}]"#)
    #expect(try JSONPatch.diff(from: 1, to: "x").apply(to: 1) == "x")
  }

  @Test func readsAndAppliesPatchDocuments() throws {
    let document = try JSONValue.parseYAML(
      #"[{"op":"add","path":"/a/-","value":3},{"op":"remove","path":"/b"},{"op":"replace","path":"/c","value":0}]"#
    )
    let patch = try JSONPatch(document)
    #expect(patch.jsonValue == document)
    #expect(try patch.apply(to: ["a": [1, 2], "b": true, "c": 1]) == ["a": [1, 2, 3], "c": 0])
  }

  @Test(arguments: [
    (#"{"op":"add","path":"/a/b","value":1}"#, "operation 0: /a: no such member"),
    (#"{"op":"remove","path":"/x"}"#, "operation 0: /x: no such member to remove"),
    (#"{"op":"replace","path":"/list/5","value":1}"#, "operation 0: /list/5: index out of range (count 2)"),
    (#"{"op":"add","path":"/list/01","value":1}"#, "operation 0: /list/01: \"01\" is not an array index"),
    (#"{"op":"remove","path":""}"#, "operation 0: cannot remove the whole document"),
    (#"{"op":"move","from":"/a","path":"/b"}"#, "operation 0: unsupported op \"move\""),
    (#"{"op":"add","path":"x","value":1}"#, "operation 0: pointer \"x\" does not start with \"/\""),
    (
      #"{"op":"add","path":"/a~2","value":1}"#,
      "operation 0: pointer \"/a~2\": \"~\" must be followed by 0 or 1"
    ),
    (
      #"{"op":"add","path":"/list/0/x","value":1}"#,
      "operation 0: /list/0/x: parent is neither an object nor an array"
    ),
  ])
  func badOperationsAreNamed(operation: String, message: String) throws {
    let document: JSONValue = ["list": [1, 2]]
    let parsed = try JSONValue.parseYAML("[\(operation)]")
    do throws(JSONPatchError) {
      _ = try JSONPatch(parsed).apply(to: document)
      Issue.record("expected an error: \(message)")
    } catch {
      #expect(error.description == message)
    }
  }

  @Test(
    "python jsonpatch applies our patches", .enabled(if: ExternalTools.python(module: "jsonpatch").shouldRun))
  func pythonAgrees() throws {
    guard ExternalTools.python(module: "jsonpatch").require() else { return }
    let cases: [(JSONValue, JSONValue)] = [
      (Self.pod, Self.injectedPod),
      (Self.injectedPod, Self.pod),
      (["a/b": ["~": [1, 2, 3]]], ["a/b": ["~": [1]], "c~/d": "new"]),
      (["list": [["x": 1], 2]], ["list": [["x": 2, "y": [true]], 2, ["z": nil], "tail"]]),
      ([1, 2, 3], [:]),
    ]
    for (source, target) in cases {
      let patch = JSONPatch.diff(from: source, to: target)
      let input: JSONValue = ["source": source, "target": target, "patch": patch.jsonValue]
      let result = try ExternalTools.runPython(
        """
        import json, sys, jsonpatch
        doc = json.load(sys.stdin)
        result = jsonpatch.JsonPatch(doc["patch"]).apply(doc["source"])
        print("equal" if result == doc["target"] else "different: " + json.dumps(result))
        """, stdin: input.jsonText)
      #expect(result.status == 0, "\(result.stderr)")
      #expect(
        result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "equal", "patch \(patch.jsonText)")
    }
  }
}

extension JSONValue {
  /// The same value with every object's keys sorted: JSON equality without key order.
  var canonical: JSONValue {
    switch self {
    case .object(let object):
      return .object(
        .init(uniqueKeysWithValues: object.sorted { $0.key < $1.key }.map { ($0.key, $0.value.canonical) }))
    case .array(let items): return .array(items.map(\.canonical))
    default: return self
    }
  }
}

/// Programs the tests run (python3, openssl, curl, kubernetes-validate), with the gate the style guide asks
/// for: missing tools skip a test on a developer machine and fail it where `CI=true`.
enum ExternalTools {
  struct Result: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  struct Gate: Sendable {
    var available: Bool
    var what: String

    /// False only when a skip is acceptable.
    var shouldRun: Bool { available || ExternalTools.inCI }

    /// True if the test may go on; records a failure when the tool is missing in CI.
    func require(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
      if available { return true }
      Issue.record("CI=true but \(what) is missing", sourceLocation: sourceLocation)
      return false
    }
  }

  static let inCI = TestEnvironment.mandatory
  static let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"

  static func python(module: String) -> Gate {
    let available = (try? run([python, "-c", "import \(module)"]).status == 0) ?? false
    return Gate(
      available: available,
      what: "the Python module \(module) (pip install \(module.replacingOccurrences(of: "_", with: "-")))")
  }

  static func program(_ name: String) -> Gate {
    let available = (try? run(["sh", "-c", "command -v \(name)"]).status == 0) ?? false
    return Gate(available: available, what: "the program \(name)")
  }

  static func runPython(_ script: String, stdin: String = "", arguments: [String] = []) throws -> Result {
    try run([python, "-c", script] + arguments, stdin: stdin)
  }

  /// Runs `arguments` (looked up on PATH) to completion; output goes through files, so no pipe can fill up.
  static func run(_ arguments: [String], stdin: String = "", directory: String? = nil) throws -> Result {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pf-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = scratch.appendingPathComponent("in")
    let output = scratch.appendingPathComponent("out")
    let errors = scratch.appendingPathComponent("err")
    try Data(stdin.utf8).write(to: input)
    try Data().write(to: output)
    try Data().write(to: errors)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardInput = try FileHandle(forReadingFrom: input)
    process.standardOutput = try FileHandle(forWritingTo: output)
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
    let termination = ChildProcess.reap(process, timeout: .seconds(120))
    return Result(
      status: termination.exitStatusOrFailure,
      stdout: (try? String(contentsOf: output, encoding: .utf8)) ?? "",
      stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
  }

  /// A new empty directory under the system's temporary directory.
  static func temporaryDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// The repository's root directory (this file is Tests/InjectorTests/JSONPatchTests.swift).
  static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
}
