import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PilotfishKit
import Testing

@testable import Injector

/// The injection webhook: the URL-path environment, owners, routing and AdmissionReview answers without
/// sockets; then a real HTTPS server on 127.0.0.1 port 0 driven by curl and openssl, with certificates
/// made at test time by deploy/gen-webhook-certs.sh.
@Suite("Webhook")
struct WebhookTests {
  // MARK: - Pure parts

  @Test(arguments: [
    ("/inject", [(String, String)]()),
    ("/inject/", []),
    ("/inject/cluster/c1", [("ISTIO_META_CLUSTER_ID", "c1")]),
    ("/inject/net/n1/cluster/c1/", [("ISTIO_META_NETWORK", "n1"), ("ISTIO_META_CLUSTER_ID", "c1")]),
    (
      "/inject/cluster/c1/net/n1/my_key/v",
      [("ISTIO_META_CLUSTER_ID", "c1"), ("ISTIO_META_NETWORK", "n1"), ("MY_KEY", "v")]
    ),
    ("/inject/cluster/a--slash--b/odd", [("ISTIO_META_CLUSTER_ID", "a/b")]),
    ("/inject/:ENV:cluster=c1:ENV:net=n1", [("ISTIO_META_CLUSTER_ID", "c1"), ("ISTIO_META_NETWORK", "n1")]),
    (
      "/inject/:ENV:cluster=c1:ENV:=bad:ENV:noequals:ENV:empty=",
      [("ISTIO_META_CLUSTER_ID", "c1"), ("EMPTY", "")]
    ),
  ])
  func pathEnvironment(path: String, expected: [(String, String)]) {
    let environment = InjectPathParameters.environment(fromPath: path)
    #expect(environment.map { "\($0.key)=\($0.value)" } == expected.map { "\($0.0)=\($0.1)" })
  }

  @Test func pathEnvironmentReachesTheSettings() {
    let settings = InjectorSettings().applying(
      pathEnvironment: InjectPathParameters.environment(fromPath: "/inject/cluster/east/net/n1"))
    #expect(settings.clusterID == "east")
    #expect(settings.proxyMetadata == ["ISTIO_META_NETWORK": "n1"])
  }

  @Test func podOwners() throws {
    func pod(_ generateName: String?, _ owner: JSONValue?, labels: JSONValue = [:]) -> JSONValue {
      var metadata: JSONValue = ["name": "p-1", "labels": labels]
      if let generateName { metadata["generateName"] = .string(generateName) }
      if let owner { metadata["ownerReferences"] = [owner] }
      return ["metadata": metadata]
    }
    func ref(_ kind: String, _ name: String, _ apiVersion: String = "apps/v1", controller: Bool = true)
      -> JSONValue
    {
      [
        "apiVersion": .string(apiVersion), "kind": .string(kind), "name": .string(name),
        "controller": .bool(controller),
      ]
    }
    #expect(PodOwner(pod: pod(nil, nil)) == PodOwner(apiVersion: "v1", kind: "Pod", name: "p-1"))
    #expect(
      PodOwner(pod: pod(nil, ref("ReplicaSet", "web-5d9f"))).kind == "Pod", "only generated names are traced")
    #expect(
      PodOwner(pod: pod("web-5d9f-", ref("ReplicaSet", "web-5d9f"), labels: ["pod-template-hash": "5d9f"]))
        == PodOwner(apiVersion: "apps/v1", kind: "Deployment", name: "web"))
    #expect(
      PodOwner(pod: pod("rs-", ref("ReplicaSet", "rs")))
        == PodOwner(apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs"))
    #expect(
      PodOwner(pod: pod("backup-28930440-", ref("Job", "backup-28930440", "batch/v1")))
        == PodOwner(apiVersion: "batch/v1", kind: "CronJob", name: "backup"))
    #expect(PodOwner(pod: pod("migrate-2-", ref("Job", "migrate-2", "batch/v1"))).kind == "Job")
    #expect(PodOwner(pod: pod("x-", ref("StatefulSet", "db", controller: false))).kind == "Pod")
  }

  static let router = WebhookRouter(reviewer: AdmissionReviewer(settings: InjectorSettings()))

  static func review(_ apiVersion: String = "admission.k8s.io/v1", pod: JSONValue, namespace: String = "demo")
    -> JSONValue
  {
    [
      "apiVersion": .string(apiVersion), "kind": "AdmissionReview",
      "request": [
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "kind": ["group": "", "version": "v1", "kind": "Pod"],
        "resource": ["group": "", "version": "v1", "resource": "pods"], "namespace": .string(namespace),
        "operation": "CREATE", "object": pod,
      ],
    ]
  }

  static let pod: JSONValue = [
    "apiVersion": "v1", "kind": "Pod",
    "metadata": [
      "name": "web", "labels": ["app": "web"],
      "managedFields": [["manager": "kubectl", "operation": "Update", "apiVersion": "v1"]],
    ],
    "spec": ["containers": [["name": "web", "image": "nginx:1.25", "ports": [["containerPort": 80]]]]],
  ]

  static func post(_ body: String, path: String = "/inject", contentType: String? = "application/json")
    -> WebhookResponse
  {
    router.respond(
      to: WebhookRequest(method: .POST, path: path, contentType: contentType, body: Array(body.utf8)))
  }

  @Test func routes() {
    #expect(
      Self.router.respond(to: .init(method: .GET, path: "/healthz", contentType: nil, body: [])).status == .ok
    )
    #expect(
      Self.router.respond(to: .init(method: .GET, path: "/readyz", contentType: nil, body: [])).status == .ok)
    #expect(
      Self.router.respond(to: .init(method: .GET, path: "/metrics", contentType: nil, body: [])).status
        == .notFound)
    #expect(
      Self.router.respond(to: .init(method: .GET, path: "/inject", contentType: nil, body: [])).status
        == .methodNotAllowed)
    #expect(Self.post("").status == .badRequest)
    #expect(Self.post("{}", contentType: "text/plain").status == .unsupportedMediaType)
    #expect(Self.post("{}", contentType: nil).status == .unsupportedMediaType)
    #expect(Self.post("{}", contentType: "Application/JSON; charset=utf-8").status == .ok)
    #expect(Self.post("{}", path: "/injector").status == .notFound)
  }

  @Test(arguments: ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
  func reviewsAreAnsweredInTheirVersion(apiVersion: String) throws {
    let response = Self.post(Self.review(apiVersion, pod: Self.pod).jsonText)
    #expect(response.status == .ok)
    #expect(response.contentType == "application/json")
    let review = try JSONValue.parseYAML(response.body)
    #expect(review["apiVersion"] == .string(apiVersion))
    #expect(review["kind"] == "AdmissionReview")
    #expect(review[path: "response", "uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002")
    #expect(review[path: "response", "allowed"] == true)
    #expect(review[path: "response", "patchType"] == "JSONPatch")
    let patchText = try #require(
      review[path: "response", "patch"]?.stringValue.flatMap { Data(base64Encoded: $0) })
    let patch = try JSONPatch(try JSONValue.parseYAML(String(decoding: patchText, as: UTF8.self)))
    #expect(!patch.operations.contains { $0.path.tokens.starts(with: ["metadata", "managedFields"]) })
    let patched = try patch.apply(to: Self.pod)
    #expect(patched[path: "metadata", "managedFields"] == Self.pod[path: "metadata", "managedFields"])
    #expect(DocumentsTests.proxy(in: patched) != nil)
    #expect(
      DocumentsTests.env("ISTIO_META_OWNER", of: DocumentsTests.proxy(in: patched))
        == "kubernetes://apis/v1/namespaces/demo/pods/web", "the namespace comes from the request")
  }

  @Test func theURLPathAddsProxyEnvironment() throws {
    let response = Self.post(Self.review(pod: Self.pod).jsonText, path: "/inject/cluster/east/net/net1")
    let review = try JSONValue.parseYAML(response.body)
    let patchText = try #require(
      review[path: "response", "patch"]?.stringValue.flatMap { Data(base64Encoded: $0) })
    let patched = try JSONPatch(try JSONValue.parseYAML(String(decoding: patchText, as: UTF8.self))).apply(
      to: Self.pod)
    let proxy = DocumentsTests.proxy(in: patched)
    #expect(DocumentsTests.env("ISTIO_META_CLUSTER_ID", of: proxy) == "east")
    #expect(DocumentsTests.env("ISTIO_META_NETWORK", of: proxy) == "net1")
  }

  @Test func skippedPodsAreAllowedWithoutAPatch() throws {
    var pod = Self.pod
    pod["metadata"]?["labels"]?["sidecar.istio.io/inject"] = "false"
    let review = try JSONValue.parseYAML(Self.post(Self.review(pod: pod).jsonText).body)
    #expect(review["response"] == ["uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": true])
  }

  @Test func badAnnotationsAreDeniedWithTheReason() throws {
    var pod = Self.pod
    pod["metadata"]?["annotations"] = ["traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/33"]
    let review = try JSONValue.parseYAML(Self.post(Self.review(pod: pod).jsonText).body)
    #expect(review[path: "response", "allowed"] == false)
    #expect(review[path: "response", "patch"] == nil)
    #expect(
      review[path: "response", "status", "message"]
        == #"pod demo/web: annotation traffic.sidecar.istio.io/excludeOutboundIPRanges: "10.0.0.0/33" is not a CIDR"#
    )
  }

  @Test(arguments: [
    ("{not json", "could not decode the AdmissionReview"),
    (
      #"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview"}"#,
      #"unsupported AdmissionReview apiVersion "admission.k8s.io/v2""#
    ),
    (#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "the AdmissionReview has no request"),
    (
      #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}"#,
      "request.object is missing or not an object"
    ),
    (#"{"apiVersion":"admission.k8s.io/v1","kind":"Other","request":{}}"#, #"kind is "Other""#),
  ])
  func undecodableReviewsAreDenied(body: String, message: String) throws {
    let response = Self.post(body)
    #expect(response.status == .ok)
    let review = try JSONValue.parseYAML(response.body)
    #expect(review["kind"] == "AdmissionReview")
    #expect(review[path: "response", "allowed"] == false)
    let text = review[path: "response", "status", "message"]?.stringValue ?? ""
    #expect(text.hasPrefix(message), "\(text)")
  }

  @Test func requestAssemblyHonoursTheBodyLimit() {
    var machine = WebhookHTTPHandler.StateMachine(maxBodyBytes: 8)
    var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/inject/cluster/c?timeout=10s")
    head.headers.add(name: "content-type", value: "application/json")
    #expect(machine.head(head) == .none)
    #expect(machine.body(ByteBuffer(string: "{\"a\":")) == .none)
    #expect(machine.body(ByteBuffer(string: "1}")) == .none)
    #expect(
      machine.end()
        == .dispatch(
          WebhookRequest(
            method: .POST, path: "/inject/cluster/c", contentType: "application/json",
            body: Array("{\"a\":1}".utf8)),
          keepAlive: true))

    #expect(machine.head(head) == .none)
    #expect(
      machine.body(ByteBuffer(string: "123456789"))
        == .refuse(.payloadTooLarge, "body exceeds the limit of 8 bytes"))
    #expect(machine.end() == .none, "nothing more after a refusal")

    var declared = WebhookHTTPHandler.StateMachine(maxBodyBytes: 8)
    head.headers.add(name: "content-length", value: "100")
    #expect(declared.head(head) == .refuse(.payloadTooLarge, "body of 100 bytes exceeds the limit of 8"))
  }

  // MARK: - Over HTTPS

  static let toolsPresent =
    ExternalTools.program("openssl").available && ExternalTools.program("curl").available
  static var toolsGate: ExternalTools.Gate { .init(available: toolsPresent, what: "openssl and curl") }
  static let serviceHost = "pilotfish-webhook.pilotfish-system.svc"

  /// A running server with its certificate directory; `stop()` cancels it and removes the files.
  final class LiveServer: Sendable {
    let directory: URL
    let port: Int
    let server: WebhookServer
    let task: Task<Void, any Error>

    init(maxBodyBytes: Int = 10 << 20, limits: WebhookServer.Limits = .init()) async throws {
      directory = try ExternalTools.temporaryDirectory("pf-webhook")
      try LiveServer.makeCertificates(into: directory)
      let (addresses, continuation) = AsyncStream<SocketAddress>.makeStream()
      let server = try WebhookServer(
        configuration: .init(
          host: "127.0.0.1", port: 0, certificateChainPath: directory.appendingPathComponent("tls.crt").path,
          privateKeyPath: directory.appendingPathComponent("tls.key").path,
          certificatePollInterval: .milliseconds(100), maxBodyBytes: maxBodyBytes, limits: limits),
        settings: InjectorSettings(),
        logger: Logger(label: "test.webhook", factory: { _ in SwiftLogNoOpLogHandler() }),
        onListening: { continuation.yield($0) })
      self.server = server
      task = Task { try await server.run() }
      var iterator = addresses.makeAsyncIterator()
      port = try #require(await iterator.next()?.port)
    }

    static func makeCertificates(into directory: URL) throws {
      let script = ExternalTools.repositoryRoot.appendingPathComponent("deploy/gen-webhook-certs.sh").path
      let made = try ExternalTools.run([
        "bash", script, "--no-kubectl", "--out-dir", directory.path, "--days", "1",
      ])
      guard made.status == 0 else {
        throw WebhookError(.certificate, "gen-webhook-certs.sh failed: \(made.stderr)")
      }
    }

    func stop() async {
      task.cancel()
      _ = await task.result
      try? FileManager.default.removeItem(at: directory)
    }

    /// `curl` over HTTPS, trusting `ca` (default: this server's CA); returns the status and the body.
    func curl(
      _ path: String, method: String = "POST", body: String? = nil, contentType: String? = "application/json",
      ca: URL? = nil, extra: [String] = []
    ) throws -> (status: Int, body: String) {
      let bodyFile = directory.appendingPathComponent("body-\(UUID().uuidString)")
      defer { try? FileManager.default.removeItem(at: bodyFile) }
      var arguments = [
        "curl", "-sS", "--max-time", "20", "--cacert",
        (ca ?? directory.appendingPathComponent("ca.crt")).path,
        "--resolve", "\(WebhookTests.serviceHost):\(port):127.0.0.1", "-o", bodyFile.path, "-w",
        "%{http_code}",
        "-X", method,
      ]
      if let contentType { arguments += ["-H", "Content-Type: \(contentType)"] }
      if let body {
        let input = directory.appendingPathComponent("in-\(UUID().uuidString)")
        try Data(body.utf8).write(to: input)
        arguments += ["--data-binary", "@\(input.path)"]
      }
      arguments += extra + ["https://\(WebhookTests.serviceHost):\(port)\(path)"]
      let result = try ExternalTools.run(arguments)
      // With --next, -w prints one status per request: the last one is returned.
      guard result.status == 0, let status = Int(result.stdout.suffix(3)) else {
        throw WebhookError(.bind, "curl failed (\(result.status)): \(result.stderr)")
      }
      return (status, (try? String(contentsOf: bodyFile, encoding: .utf8)) ?? "")
    }

    /// The serial (hex, upper case as openssl prints it) of the certificate a new TLS connection gets.
    func servedSerial() throws -> String {
      let result = try ExternalTools.run([
        "sh", "-c",
        "openssl s_client -connect 127.0.0.1:\(port) -servername \(WebhookTests.serviceHost) </dev/null 2>/dev/null"
          + " | openssl x509 -noout -serial",
      ])
      return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
  }

  /// Runs `body` against a fresh server and always stops it afterwards.
  static func withLiveServer(
    maxBodyBytes: Int = 10 << 20, limits: WebhookServer.Limits = .init(),
    _ body: (LiveServer) async throws -> Void
  ) async throws {
    let live = try await LiveServer(maxBodyBytes: maxBodyBytes, limits: limits)
    do {
      try await body(live)
    } catch {
      await live.stop()
      throw error
    }
    await live.stop()
  }

  @Test(
    "v1 and v1beta1 reviews over HTTPS; the patch gives what pilotfish inject gives",
    .enabled(if: toolsGate.shouldRun))
  func reviewsOverHTTPS() async throws {
    guard Self.toolsGate.require() else { return }
    try await Self.withLiveServer { live in try Self.reviewsOverHTTPS(live) }
  }

  static func reviewsOverHTTPS(_ live: LiveServer) throws {
    for apiVersion in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
      let (status, body) = try live.curl("/inject", body: Self.review(apiVersion, pod: Self.pod).jsonText)
      #expect(status == 200)
      let review = try JSONValue.parseYAML(body)
      #expect(review["apiVersion"] == .string(apiVersion))
      #expect(review[path: "response", "uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002")
      #expect(review[path: "response", "allowed"] == true)
      #expect(review[path: "response", "patchType"] == "JSONPatch")
    }

    // Python's jsonpatch applies the patch to the pod as sent; the result must be `pilotfish inject`'s.
    let jsonpatch = ExternalTools.python(module: "jsonpatch")
    guard jsonpatch.require() else { return }
    let (_, body) = try live.curl("/inject", body: Self.review(pod: Self.pod).jsonText)
    let patch = try #require(try JSONValue.parseYAML(body)[path: "response", "patch"])
    var plainPod = Self.pod
    plainPod["metadata"]?["managedFields"] = nil
    let injected = try DocumentsTests.injector(namespace: "demo").process(plainPod.prettyJSONText).text
    let input: JSONValue = [
      "original": Self.pod, "patch": patch, "expected": try JSONValue.parseYAML(injected),
    ]
    let compared = try ExternalTools.runPython(
      """
      import base64, json, sys, jsonpatch
      doc = json.load(sys.stdin)
      patch = json.loads(base64.b64decode(doc["patch"]))
      result = jsonpatch.JsonPatch(patch).apply(doc["original"])
      assert result["metadata"].pop("managedFields") == doc["original"]["metadata"]["managedFields"]
      print("equal" if result == doc["expected"] else "different:\\n" + json.dumps(result, indent=1))
      """, stdin: input.jsonText)
    #expect(compared.status == 0, "\(compared.stderr)")
    #expect(compared.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "equal")
  }

  @Test(
    "HTTP errors: 400, 415, 404, 405, 413, and allowed:false over HTTPS", .enabled(if: toolsGate.shouldRun))
  func errorsOverHTTPS() async throws {
    guard Self.toolsGate.require() else { return }
    try await Self.withLiveServer(maxBodyBytes: 64 * 1024) { live in try Self.errorsOverHTTPS(live) }
  }

  static func errorsOverHTTPS(_ live: LiveServer) throws {
    #expect(try live.curl("/healthz", method: "GET", contentType: nil).status == 200)
    #expect(try live.curl("/readyz", method: "GET", contentType: nil).status == 200)
    #expect(try live.curl("/inject", body: "").status == 400)
    #expect(try live.curl("/inject", body: "{}", contentType: "text/yaml").status == 415)
    #expect(try live.curl("/nothing-here", body: "{}").status == 404)
    #expect(try live.curl("/inject", method: "GET", contentType: nil).status == 405)
    #expect(try live.curl("/inject", body: String(repeating: "x", count: 100 * 1024)).status == 413)

    var pod = Self.pod
    pod["metadata"]?["annotations"] = ["sidecar.istio.io/proxyCPU": "lots"]
    let (status, body) = try live.curl("/inject/cluster/c1", body: Self.review(pod: pod).jsonText)
    #expect(status == 200)
    let review = try JSONValue.parseYAML(body)
    #expect(review[path: "response", "allowed"] == false)
    let message = review[path: "response", "status", "message"]?.stringValue ?? ""
    #expect(message.hasPrefix(#"pod demo/web: annotation sidecar.istio.io/proxyCPU: "lots""#), "\(message)")

    // Keep-alive: two requests on one connection both get answers.
    let twice = try live.curl(
      "/healthz", method: "GET", contentType: nil,
      extra: [
        "--next", "--cacert", live.directory.appendingPathComponent("ca.crt").path, "--resolve",
        "\(Self.serviceHost):\(live.port):127.0.0.1", "https://\(Self.serviceHost):\(live.port)/readyz",
      ])
    #expect(twice.status == 200)
  }

  /// Python's ssl client against the live server: slowloris heads, trickled bodies, a YAML-alias body.
  /// Prints one line per measurement; bounded by socket timeouts and `timeout 90`.
  static let hostileClients = #"""
    import socket, ssl, sys, threading, time
    port, ca, host, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    context = ssl.create_default_context(cafile=ca)
    CRLF = "\r\n"
    def connect(timeout=30):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return context.wrap_socket(raw, server_hostname=host)
    def closed_after(s):
        start = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except (OSError, ssl.SSLError):
            pass
        return time.monotonic() - start
    def request(method, path, headers, body=b""):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + host] + headers
        return (CRLF.join(lines) + CRLF + CRLF).encode() + body
    def read_all(s):
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    def read_response(s):
        """One response on a kept-alive connection (head and Content-Length body): its status line."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return "closed"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                return "closed"
            body += chunk
        return head.split(b"\r\n", 1)[0].decode()
    def get(path):
        s = connect()
        s.sendall(request("GET", path, ["Connection: close"]))
        return read_all(s).split(CRLF.encode(), 1)[0].decode()
    if mode == "slowloris":
        s = connect()
        s.sendall(("POST /inject HTTP/1.1" + CRLF + "Host: " + host + CRLF + "Content-Type: app").encode())
        print("closed after %.2f" % closed_after(s))
    elif mode == "trickle":
        stop = threading.Event()
        opened = []
        def trickle():
            try:
                s = connect()
                s.sendall(request("POST", "/inject", [
                    "Content-Type: application/json", "Content-Length: %d" % (9 * 1024 * 1024)]))
                opened.append(1)
                while not stop.is_set():
                    s.sendall(b"{" * 64)
                    time.sleep(0.05)
            except (OSError, ssl.SSLError):
                pass
        threads = [threading.Thread(target=trickle, daemon=True) for _ in range(30)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 40
        while len(opened) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        print("trickling %d" % len(opened))
        for _ in range(5):
            start = time.monotonic()
            print("healthz %s in %.2f" % (get("/healthz"), time.monotonic() - start))
            time.sleep(0.2)
        stop.set()
    elif mode == "cap":
        cap = int(sys.argv[5])
        held = []
        for _ in range(cap):
            s = connect()
            s.sendall(request("GET", "/healthz", []))
            print("held %s" % read_response(s))
            held.append(s)
        start = time.monotonic()
        try:
            s = connect(timeout=5)
            s.sendall(request("GET", "/healthz", ["Connection: close"]))
            answer = read_all(s)
            if answer:
                print("extra answered %s" % answer.split(CRLF.encode(), 1)[0].decode())
            else:
                print("extra closed (eof) after %.2f" % (time.monotonic() - start))
        except TimeoutError:
            print("extra open after %.2f" % (time.monotonic() - start))
        except (OSError, ssl.SSLError) as error:
            print("extra closed (%s) after %.2f" % (type(error).__name__, time.monotonic() - start))
        held[0].sendall(request("GET", "/healthz", []))
        print("still %s" % read_response(held[0]))
        for s in held:
            s.close()
        deadline = time.monotonic() + 15
        status = ""
        while not status.startswith("HTTP/1.1 200") and time.monotonic() < deadline:
            try:
                status = get("/healthz")
            except (OSError, ssl.SSLError):
                time.sleep(0.05)
        print("after %s" % status)
    elif mode == "idle":
        s = connect()
        s.sendall(request("GET", "/healthz", []))
        print("answered %s" % read_response(s))
        print("closed after %.2f" % closed_after(s))
    elif mode == "aliases":
        levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 10):
            levels.append("a%d: &a%d [%s]" % (i, i, ",".join(["*a%d" % (i - 1)] * 10)))
        body = "\n".join(levels).encode()
        s = connect()
        start = time.monotonic()
        s.sendall(request("POST", "/inject", [
            "Content-Type: application/json", "Content-Length: %d" % len(body), "Connection: close"], body))
        data = read_all(s)
        print("answered in %.2f" % (time.monotonic() - start))
        print(data.decode(errors="replace"))
    """#

  static func hostile(_ live: LiveServer, _ mode: String, _ extra: [String] = []) throws -> String {
    let result = try ExternalTools.run(
      [
        "timeout", "90", "python3", "-c", hostileClients, String(live.port),
        live.directory.appendingPathComponent("ca.crt").path, serviceHost, mode,
      ] + extra)
    #expect(result.status == 0, "\(result.stderr)")
    return result.stdout
  }

  static func seconds(after prefix: String, in output: String) -> Double? {
    output.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap {
      Double($0.split(separator: " ").last ?? "")
    }
  }

  @Test("a slowloris head is closed at the request-head deadline", .enabled(if: toolsGate.shouldRun))
  func slowlorisIsClosed() async throws {
    guard Self.toolsGate.require() else { return }
    var limits = WebhookServer.Limits()
    limits.requestHeadTimeout = .seconds(1)
    try await Self.withLiveServer(limits: limits) { live in
      let output = try Self.hostile(live, "slowloris")
      let closed = try #require(Self.seconds(after: "closed after", in: output), "\(output)")
      #expect(closed < 5, "\(output)")
    }
  }

  @Test("an idle kept-alive connection is closed at the idle deadline", .enabled(if: toolsGate.shouldRun))
  func idleConnectionIsClosed() async throws {
    guard Self.toolsGate.require() else { return }
    var limits = WebhookServer.Limits()
    limits.idleTimeout = .seconds(1)
    try await Self.withLiveServer(limits: limits) { live in
      let output = try Self.hostile(live, "idle")
      #expect(output.contains("answered HTTP/1.1 200"), "\(output)")
      let closed = try #require(Self.seconds(after: "closed after", in: output), "\(output)")
      // Without the idle deadline the client gives up after its own 30 s.
      #expect(closed < 10, "\(output)")
    }
  }

  @Test(
    "connections beyond the cap are closed on accept; new ones are served once others close",
    .enabled(if: toolsGate.shouldRun))
  func connectionsBeyondTheCapAreClosed() async throws {
    guard Self.toolsGate.require() else { return }
    var limits = WebhookServer.Limits()
    limits.maxConnections = 8
    try await Self.withLiveServer(limits: limits) { live in
      let output = try Self.hostile(live, "cap", ["8"])
      let held = output.split(separator: "\n").filter { $0.hasPrefix("held ") }
      #expect(held.count == 8 && held.allSatisfy { $0.hasPrefix("held HTTP/1.1 200") }, "\(output)")
      // The ninth is closed during its TLS handshake; without the cap it would be answered.
      let closed = try #require(Self.seconds(after: "extra closed", in: output), "\(output)")
      #expect(closed < 5, "\(output)")
      #expect(output.contains("still HTTP/1.1 200"), "\(output)")
      #expect(output.contains("after HTTP/1.1 200"), "\(output)")
    }
  }

  @Test(
    "/healthz answers while 30 clients trickle 9 MiB bodies; they are cut at the request deadline",
    .enabled(if: toolsGate.shouldRun))
  func healthzWhileBodiesTrickle() async throws {
    guard Self.toolsGate.require() else { return }
    var limits = WebhookServer.Limits()
    limits.requestTimeout = .seconds(60)
    try await Self.withLiveServer(limits: limits) { live in
      let output = try Self.hostile(live, "trickle")
      #expect(output.contains("trickling 30"), "\(output)")
      let answers = output.split(separator: "\n").filter { $0.hasPrefix("healthz ") }
      #expect(answers.count == 5, "\(output)")
      for answer in answers {
        #expect(answer.hasPrefix("healthz HTTP/1.1 200"), "\(output)")
        // Generous: a TLS handshake from a Python thread on a loaded two-core CI machine takes seconds.
        #expect((Double(answer.split(separator: " ").last ?? "") ?? 99) < 8, "\(output)")
      }
    }
  }

  @Test("a YAML-alias body is refused at once as not JSON", .enabled(if: toolsGate.shouldRun))
  func yamlAliasesAreNotExpanded() async throws {
    guard Self.toolsGate.require() else { return }
    try await Self.withLiveServer { live in
      let output = try Self.hostile(live, "aliases")
      let took = try #require(Self.seconds(after: "answered in", in: output), "\(output)")
      #expect(took < 2, "\(output)")
      #expect(output.contains("HTTP/1.1 200"), "\(output)")
      #expect(output.contains(#""allowed":false"#), "\(output)")
      #expect(output.contains("could not decode the AdmissionReview: not valid JSON"), "\(output)")
    }
  }

  /// A pod's `proxy.istio.io/config` annotation is YAML: nested aliases used to expand to ~10^9 values in
  /// the webhook (memory and CPU of the cluster-wide injector); now the conversion budget refuses them.
  @Test func aliasBombInAnAnnotationIsRefusedQuickly() {
    var levels = [#"a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#]
    for i in 1..<10 {
      levels.append(
        "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ",") + "]")
    }
    var pod = Self.pod
    pod["metadata"]?["annotations"] = ["proxy.istio.io/config": .string(levels.joined(separator: "\n"))]
    let start = ContinuousClock.now
    let (_, decision) = AdmissionReviewer(settings: InjectorSettings()).review(
      body: Array(Self.review(pod: pod).jsonText.utf8), path: "/inject")
    #expect(ContinuousClock.now - start < .seconds(2))
    guard case .deny(let message) = decision else {
      Issue.record("expected a denial, got \(decision)")
      return
    }
    #expect(message.contains("proxy.istio.io/config") && message.contains("YAML aliases"), "\(message)")
  }

  @Test(
    "a replaced certificate is served to new connections; an unusable one is not",
    .enabled(if: toolsGate.shouldRun))
  func certificateReload() async throws {
    guard Self.toolsGate.require() else { return }
    try await Self.withLiveServer { live in try Self.certificateReload(live) }
  }

  /// rename(2): the file at `destination` is replaced in one step, as a secret volume update does.
  static func move(_ source: URL, over destination: URL) throws {
    guard rename(source.path, destination.path) == 0 else {
      throw WebhookError(.certificate, "rename \(source.path) to \(destination.path) failed: errno \(errno)")
    }
  }

  static func certificateReload(_ live: LiveServer) throws {
    let fileManager = FileManager.default
    func serial(of certificate: URL) throws -> String {
      try ExternalTools.run(["openssl", "x509", "-noout", "-serial", "-in", certificate.path]).stdout
        .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let first = try serial(of: live.directory.appendingPathComponent("tls.crt"))
    #expect(try live.servedSerial() == first)

    // Rotate: a new CA and serving certificate, moved into place the way a secret update replaces files.
    let next = live.directory.appendingPathComponent("next")
    try fileManager.createDirectory(at: next, withIntermediateDirectories: true)
    try LiveServer.makeCertificates(into: next)
    let second = try serial(of: next.appendingPathComponent("tls.crt"))
    #expect(second != first)
    for name in ["tls.key", "tls.crt"] {
      try Self.move(next.appendingPathComponent(name), over: live.directory.appendingPathComponent(name))
    }
    #expect(try live.servedSerial() == second)
    #expect(
      try live.curl("/healthz", method: "GET", contentType: nil, ca: next.appendingPathComponent("ca.crt"))
        .status == 200)
    #expect(throws: WebhookError.self, "the old CA no longer verifies") {
      try live.curl("/healthz", method: "GET", contentType: nil)
    }

    // An unreadable certificate: the server keeps the one it has.
    let garbage = live.directory.appendingPathComponent("garbage")
    try Data("not a certificate".utf8).write(to: garbage)
    try Self.move(garbage, over: live.directory.appendingPathComponent("tls.crt"))
    #expect(try live.servedSerial() == second)
    #expect(
      live.server.certificates.serial.uppercased() == second.replacingOccurrences(of: "serial=", with: ""))
  }
}
