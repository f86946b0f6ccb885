internal import OrderedCollections
internal import PilotfishKit

/// The `sidecar.istio.io/status` annotation: what injection added, so it can be found and taken out again.
///
/// Invariant: the Istio fields (`initContainers`, `containers`, `volumes`, `imagePullSecrets`, `revision`)
/// are written exactly as Istio writes them (`null` for an empty list) and mean the same; the object
/// `pilotfish`, always written by Pilotfish, records what Istio's status does not: labels and annotations
/// added or changed (with their previous values) and probe ports that were names. Istio's readers ignore
/// unknown fields; a status without it (`hasRecord == false`) was written by Istio.
struct InjectionStatus: Equatable {
  var initContainers: [String] = []
  var containers: [String] = []
  var volumes: [String] = []
  var imagePullSecrets: [String] = []
  var revision: String = "default"
  var addedLabels: [String] = []
  var previousLabels: OrderedDictionary<String, String> = [:]
  var addedAnnotations: [String] = []
  var previousAnnotations: OrderedDictionary<String, String> = [:]
  /// App prober path (`/app-health/web/readyz`) to the port as the pod gave it (a name, or digits in a string).
  var probePortNames: OrderedDictionary<String, String> = [:]
  /// Whether the status carries the `pilotfish` record (always true for one that Pilotfish wrote).
  var hasRecord = true

  init() {}

  /// Reads an annotation value; nil if it is not a JSON object.
  init?(text: String) {
    guard case .object(let object)? = try? JSONValue.parseYAML(text) else { return nil }
    func strings(_ value: JSONValue?) -> [String] { value?.arrayValue?.compactMap(\.stringValue) ?? [] }
    func map(_ value: JSONValue?) -> OrderedDictionary<String, String> {
      guard case .object(let entries)? = value else { return [:] }
      return entries.compactMapValues(\.stringValue)
    }
    initContainers = strings(object["initContainers"])
    containers = strings(object["containers"])
    volumes = strings(object["volumes"])
    imagePullSecrets = strings(object["imagePullSecrets"])
    revision = object["revision"]?.stringValue ?? "default"
    let record = object["pilotfish"]
    hasRecord = record?.objectValue != nil
    addedLabels = strings(record?["addedLabels"])
    previousLabels = map(record?["previousLabels"])
    addedAnnotations = strings(record?["addedAnnotations"])
    previousAnnotations = map(record?["previousAnnotations"])
    probePortNames = map(record?["probePortNames"])
  }

  /// The annotation value, compact JSON.
  var text: String {
    func list(_ names: [String]) -> JSONValue { names.isEmpty ? .null : .array(names.map { .string($0) }) }
    func map(_ entries: OrderedDictionary<String, String>) -> JSONValue {
      .object(entries.mapValues { .string($0) })
    }
    var object: OrderedDictionary<String, JSONValue> = [
      "initContainers": list(initContainers),
      "containers": list(containers),
      "volumes": list(volumes),
      "imagePullSecrets": list(imagePullSecrets),
      "revision": .string(revision),
    ]
    var record: OrderedDictionary<String, JSONValue> = [:]
    if !addedLabels.isEmpty { record["addedLabels"] = list(addedLabels) }
    if !previousLabels.isEmpty { record["previousLabels"] = map(previousLabels) }
    if !addedAnnotations.isEmpty { record["addedAnnotations"] = list(addedAnnotations) }
    if !previousAnnotations.isEmpty { record["previousAnnotations"] = map(previousAnnotations) }
    if !probePortNames.isEmpty { record["probePortNames"] = map(probePortNames) }
    object["pilotfish"] = .object(record)
    return JSONValue.object(object).jsonText
  }
}
