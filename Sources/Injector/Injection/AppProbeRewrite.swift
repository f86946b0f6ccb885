internal import OrderedCollections
internal import PilotfishKit

/// Sends the app containers' probes and lifecycle hooks through the agent's status port, and back.
///
/// Invariant (Istio's `app_probe.go`): a readiness, liveness or startup probe with `httpGet`, `tcpSocket`
/// or `grpc`, and a preStop/postStart hook with `httpGet` or `tcpSocket`, becomes an `httpGet` of
/// `/app-health/<container>/readyz|livez|startupz` (hooks: `/app-lifecycle/<container>/prestopz|poststartz`)
/// on the status port, plain HTTP; the original action, its port resolved to a number, goes into
/// `ISTIO_KUBE_APP_PROBERS` under that path. `exec`/`sleep` handlers, handlers already aimed at the status
/// port, and ports that name no port of the container are left alone. `restore` puts back exactly what
/// `rewrite` replaced, at the same key position, given the probers and the port names it returned.
enum AppProbeRewrite {
  /// What `rewrite` took out of the pod.
  struct Probers {
    /// Path to prober (`{"httpGet": {...}, "timeoutSeconds": 1}`), sorted by path.
    var probers: OrderedDictionary<String, JSONValue> = [:]
    /// Path to the original port when it was a string.
    var portNames: OrderedDictionary<String, String> = [:]
  }

  private static let probeFields: [(field: String, suffix: String)] = [
    ("readinessProbe", "readyz"), ("livenessProbe", "livez"), ("startupProbe", "startupz"),
  ]
  private static let hookFields: [(field: String, suffix: String)] = [
    ("preStop", "prestopz"), ("postStart", "poststartz"),
  ]

  /// Rewrites every container of `lists` except `istio-proxy`.
  static func rewrite(_ lists: inout [[JSONValue]], statusPort: Int) -> Probers {
    var result = Probers()
    for listIndex in lists.indices {
      for index in lists[listIndex].indices {
        guard case .object(var container) = lists[listIndex][index],
          let name = container["name"]?.stringValue, name != InjectionKeys.proxyContainer
        else { continue }
        let ports = namedPorts(container)
        for (field, suffix) in probeFields {
          guard case .object(var probe)? = container[field] else { continue }
          let path = "/app-health/\(name)/\(suffix)"
          if rewrite(
            &probe, path: path, kinds: ["httpGet", "tcpSocket", "grpc"], ports: ports,
            statusPort: statusPort, into: &result)
          {
            container[field] = .object(probe)
          }
        }
        if case .object(var lifecycle)? = container["lifecycle"] {
          for (field, suffix) in hookFields {
            guard case .object(var hook)? = lifecycle[field] else { continue }
            let path = "/app-lifecycle/\(name)/\(suffix)"
            if rewrite(
              &hook, path: path, kinds: ["httpGet", "tcpSocket"], ports: ports,
              statusPort: statusPort, into: &result)
            {
              lifecycle[field] = .object(hook)
            }
          }
          container["lifecycle"] = .object(lifecycle)
        }
        lists[listIndex][index] = .object(container)
      }
    }
    result.probers.sort()
    return result
  }

  /// Undoes `rewrite` on the containers named in `probers`' paths.
  static func restore(
    _ lists: inout [[JSONValue]], probers: OrderedDictionary<String, JSONValue>,
    portNames: OrderedDictionary<String, String>
  ) {
    for (path, prober) in probers {
      let parts = path.split(separator: "/")
      guard parts.count == 3, case .object(let original) = prober,
        let kind = ["httpGet", "tcpSocket", "grpc"].first(where: { original[$0] != nil }),
        case .object(var action)? = original[kind]
      else { continue }
      let containerName = String(parts[1])
      if let name = portNames[path] { action["port"] = .string(name) }
      let fields: [(field: String, suffix: String)]
      switch parts[0] {
      case "app-health": fields = probeFields
      case "app-lifecycle": fields = hookFields
      default: continue
      }
      guard let field = fields.first(where: { $0.suffix == parts[2] })?.field else { continue }
      for listIndex in lists.indices {
        for index in lists[listIndex].indices
        where lists[listIndex][index]["name"]?.stringValue == containerName {
          guard case .object(var container) = lists[listIndex][index] else { continue }
          if parts[0] == "app-health" {
            guard case .object(var probe)? = container[field],
              restore(&probe, path: path, kind: kind, action: action)
            else { continue }
            container[field] = .object(probe)
          } else {
            guard case .object(var lifecycle)? = container["lifecycle"],
              case .object(var hook)? = lifecycle[field],
              restore(&hook, path: path, kind: kind, action: action)
            else { continue }
            lifecycle[field] = .object(hook)
            container["lifecycle"] = .object(lifecycle)
          }
          lists[listIndex][index] = .object(container)
        }
      }
    }
  }

  /// The container's port names with their numbers.
  private static func namedPorts(_ container: OrderedDictionary<String, JSONValue>) -> [String: Int] {
    var result: [String: Int] = [:]
    for port in container["ports"]?.arrayValue ?? [] {
      if let name = port["name"]?.stringValue, let number = port["containerPort"]?.intValue,
        result[name] == nil
      {
        result[name] = number
      }
    }
    return result
  }

  /// Rewrites one handler; false if it is left alone.
  private static func rewrite(
    _ handler: inout OrderedDictionary<String, JSONValue>, path: String, kinds: [String],
    ports: [String: Int],
    statusPort: Int, into result: inout Probers
  ) -> Bool {
    guard let kind = kinds.first(where: { handler[$0] != nil }), case .object(var action)? = handler[kind]
    else {
      return false
    }
    // Resolve the port as the kubelet does: a name of the container's ports, else digits in a string.
    let port: Int
    var portName: String?
    switch action["port"] {
    case .number(let text)?:
      guard let number = Int(text) else { return false }
      port = number
    case .string(let name)?:
      guard let number = ports[name] ?? Int(name) else { return false }
      port = number
      portName = name
    default:
      return false
    }
    if port == statusPort { return false }
    action["port"] = .int(port)

    var prober: OrderedDictionary<String, JSONValue> = [kind: .object(action)]
    // A probe's timeout goes with it (the agent's client timeout); a lifecycle hook has none.
    if let timeout = handler["timeoutSeconds"], timeout.intValue != 0 {
      prober["timeoutSeconds"] = timeout
    }
    result.probers[path] = .object(prober)
    if let portName { result.portNames[path] = portName }

    if kind == "httpGet", case .object(var get)? = handler["httpGet"] {
      get["path"] = .string(path)
      get["port"] = .int(statusPort)
      if get["scheme"]?.stringValue == "HTTPS" { get["scheme"] = "HTTP" }
      handler["httpGet"] = .object(get)
    } else {
      replaceKey(&handler, kind, with: "httpGet", value: ["path": .string(path), "port": .int(statusPort)])
    }
    return true
  }

  /// Puts `action` back as `kind` in place of the rewritten `httpGet`; false if the handler is not ours.
  private static func restore(
    _ handler: inout OrderedDictionary<String, JSONValue>, path: String, kind: String,
    action: OrderedDictionary<String, JSONValue>
  ) -> Bool {
    guard handler["httpGet"]?["path"]?.stringValue == path else { return false }
    replaceKey(&handler, "httpGet", with: kind, value: .object(action))
    return true
  }

  /// Replaces the entry `old` by `new: value` at the same position.
  static func replaceKey(
    _ object: inout OrderedDictionary<String, JSONValue>, _ old: String, with new: String, value: JSONValue
  ) {
    guard let index = object.index(forKey: old) else {
      object[new] = value
      return
    }
    var result: OrderedDictionary<String, JSONValue> = [:]
    for (offset, element) in object.elements.enumerated() {
      if offset == index {
        result[new] = value
      } else if element.key != new {
        result[element.key] = element.value
      }
    }
    object = result
  }
}
