package import PilotfishKit

/// `pilotfish inject` as library code: adds (or removes) the sidecar in every workload of a manifest.
///
/// Pods, the pod templates of Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController and Job,
/// CronJob job templates, and the items of a `List` are mutated; every other document, and every pod the
/// injection policy skips, is returned as it came in. Errors name the document (1-based) and the object.
package struct ManifestInjector: Sendable {
  package struct Options: Sendable {
    /// The namespace of objects that have no `metadata.namespace`.
    package var defaultNamespace: String
    /// Remove the sidecar instead of adding it.
    package var uninject: Bool
    package var settings: InjectorSettings

    package init(defaultNamespace: String = "default", uninject: Bool = false, settings: InjectorSettings) {
      self.defaultNamespace = defaultNamespace
      self.uninject = uninject
      self.settings = settings
    }
  }

  /// The output text and one note per pod the policy skipped (`document 3 (Pod db): <reason>`).
  package struct Result: Sendable, Equatable {
    package var text: String
    package var notes: [String]
  }

  package var options: Options

  package init(options: Options) {
    self.options = options
  }

  /// Reads `text` (YAML stream or JSON), processes each document, prints the result in the input's format.
  package func process(_ text: String) throws(ManifestError) -> Result {
    var manifest = try Manifest(parsing: text)
    var notes: [String] = []
    for index in manifest.documents.indices {
      manifest.documents[index] = try process(
        manifest.documents[index], label: "document \(index + 1)", notes: &notes)
    }
    return Result(text: manifest.text, notes: notes)
  }

  /// Processes one object; `label` starts every error and note (`document 2`, `document 1 items[0]`).
  package func process(_ object: JSONValue, label: String, notes: inout [String]) throws(ManifestError)
    -> JSONValue
  {
    guard let kindName = object["kind"]?.stringValue, let kind = WorkloadKind(kind: kindName) else {
      return object
    }
    let name = Self.name(of: object)
    let subject = name.isEmpty ? "\(label) (\(kindName))" : "\(label) (\(kindName) \(name))"
    guard let path = kind.podPath else {
      guard case .array(var items)? = object["items"] else {
        if object["items"] == nil || object["items"] == .null { return object }
        throw ManifestError(.malformed, "\(subject): items is not a list")
      }
      for index in items.indices {
        items[index] = try process(items[index], label: "\(subject) items[\(index)]", notes: &notes)
      }
      var result = object
      result["items"] = .array(items)
      return result
    }
    guard let pod = path.reduce(Optional(object), { $0?[$1] }), case .object = pod else {
      throw ManifestError(
        .malformed,
        "\(subject): \(path.isEmpty ? "the object" : path.joined(separator: ".")) is not an object")
    }
    let mutated: JSONValue
    if options.uninject {
      mutated = PodInjector.uninject(pod)
    } else {
      var context = InjectionContext(
        namespace: object[path: "metadata", "namespace"]?.stringValue ?? options.defaultNamespace,
        namespaceLabels: [:], settings: options.settings)
      context.ownerAPIVersion = object["apiVersion"]?.stringValue
      context.ownerKind = kindName
      context.ownerName = name
      do {
        switch try PodInjector.inject(pod, context: context) {
        case .injected(let result): mutated = result
        case .skipped(let reason):
          notes.append("\(subject): not injected: \(reason)")
          return object
        }
      } catch {
        throw ManifestError(.injection, "\(subject): \(error)")
      }
    }
    return Self.replacing(object, at: path[...], with: mutated)
  }

  /// `metadata.name`, else `metadata.generateName`, else "".
  package static func name(of object: JSONValue) -> String {
    object[path: "metadata", "name"]?.stringValue ?? object[path: "metadata", "generateName"]?.stringValue
      ?? ""
  }

  private static func replacing(_ object: JSONValue, at path: ArraySlice<String>, with value: JSONValue)
    -> JSONValue
  {
    guard let key = path.first else { return value }
    var result = object
    result[key] = replacing(object[key] ?? .emptyObject, at: path.dropFirst(), with: value)
    return result
  }
}
