internal import OrderedCollections
internal import PilotfishKit

/// A pod (or pod template) taken apart into the pieces injection edits, and put back together.
///
/// Invariant: built only from an object whose `spec.containers` is a list of objects with string names
/// and whose labels and annotations are maps of strings; `assembled` writes every piece back at its
/// original position, appending only the keys that did not exist, and leaves every other field untouched.
struct PodDocument {
  var root: OrderedDictionary<String, JSONValue>
  var metadata: OrderedDictionary<String, JSONValue>
  var spec: OrderedDictionary<String, JSONValue>
  var labels: OrderedDictionary<String, String>
  var annotations: OrderedDictionary<String, String>
  var containers: [JSONValue]
  var initContainers: [JSONValue]
  var volumes: [JSONValue]

  init(_ pod: JSONValue) throws(InjectionError) {
    guard case .object(let root) = pod else {
      throw InjectionError(.invalidObject, "the object to inject is not a JSON object")
    }
    self.root = root
    switch root["metadata"] {
    case .object(let metadata)?: self.metadata = metadata
    case nil, .null?: self.metadata = [:]
    default: throw InjectionError(.invalidObject, "metadata is not an object")
    }
    guard case .object(let spec)? = root["spec"] else {
      throw InjectionError(.invalidObject, "spec is missing or not an object: not a pod or pod template")
    }
    self.spec = spec
    labels = try Self.stringMap(metadata["labels"], "metadata.labels")
    annotations = try Self.stringMap(metadata["annotations"], "metadata.annotations")
    containers = try Self.containerList(spec["containers"], "spec.containers", required: true)
    initContainers = try Self.containerList(spec["initContainers"], "spec.initContainers", required: false)
    switch spec["volumes"] {
    case .array(let volumes)?: self.volumes = volumes
    case nil, .null?: self.volumes = []
    default: throw InjectionError(.invalidObject, "spec.volumes is not a list")
    }
  }

  var hostNetwork: Bool { spec["hostNetwork"]?.boolValue ?? false }

  /// The pod with its pieces written back; empty pieces that were absent stay absent.
  var assembled: JSONValue {
    var metadata = self.metadata
    Self.write(
      &metadata, "annotations", annotations.isEmpty ? nil : .object(annotations.mapValues { .string($0) }))
    Self.write(&metadata, "labels", labels.isEmpty ? nil : .object(labels.mapValues { .string($0) }))
    var spec = self.spec
    Self.write(&spec, "initContainers", initContainers.isEmpty ? nil : .array(initContainers))
    spec["containers"] = .array(containers)
    Self.write(&spec, "volumes", volumes.isEmpty ? nil : .array(volumes))
    var root = self.root
    Self.write(&root, "metadata", metadata.isEmpty ? nil : .object(metadata))
    root["spec"] = .object(spec)
    return .object(root)
  }

  /// Sets `key` to `value`; nil removes the key, unless the existing value was an explicit empty one
  /// or null (kept as it was).
  private static func write(
    _ object: inout OrderedDictionary<String, JSONValue>, _ key: String, _ value: JSONValue?
  ) {
    if let value {
      object[key] = value
      return
    }
    switch object[key] {
    case .object(let o)? where o.isEmpty: return
    case .array(let a)? where a.isEmpty: return
    case .null?: return
    default: object.removeValue(forKey: key)
    }
  }

  /// The names of `list`'s containers, in order.
  static func names(_ list: [JSONValue]) -> [String] {
    list.compactMap { $0["name"]?.stringValue }
  }

  private static func stringMap(
    _ value: JSONValue?, _ path: String
  ) throws(InjectionError) -> OrderedDictionary<String, String> {
    switch value {
    case nil, .null?: return [:]
    case .object(let object)?:
      var result: OrderedDictionary<String, String> = [:]
      for (key, item) in object {
        guard let text = item.stringValue else {
          throw InjectionError(.invalidObject, "\(path)[\(InjectionError.quoted(key))] is not a string")
        }
        result[key] = text
      }
      return result
    default:
      throw InjectionError(.invalidObject, "\(path) is not a map of strings")
    }
  }

  private static func containerList(
    _ value: JSONValue?, _ path: String, required: Bool
  ) throws(InjectionError) -> [JSONValue] {
    let list: [JSONValue]
    switch value {
    case .array(let items)?: list = items
    case nil, .null?:
      if required { throw InjectionError(.invalidObject, "\(path) is missing: not a pod or pod template") }
      return []
    default: throw InjectionError(.invalidObject, "\(path) is not a list")
    }
    for (index, container) in list.enumerated() {
      guard case .object = container, container["name"]?.stringValue != nil else {
        throw InjectionError(.invalidObject, "\(path)[\(index)] is not a container with a name")
      }
    }
    return list
  }
}
