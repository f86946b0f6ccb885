internal import OrderedCollections

/// A label or annotation map being edited by injection, remembering how to undo each edit.
///
/// Invariant: `added` lists, in order, the keys that did not exist before; `previous` holds the value a key
/// had before its first change. Existing keys keep their position; new keys are appended. So removing
/// `added` and writing back `previous` gives the map exactly as it was.
struct MetadataEdits {
  var values: OrderedDictionary<String, String>
  private(set) var added: [String] = []
  private(set) var previous: OrderedDictionary<String, String> = [:]

  init(_ values: OrderedDictionary<String, String>) {
    self.values = values
  }

  subscript(key: String) -> String? { values[key] }

  /// Sets `key` (in place if present).
  mutating func set(_ key: String, _ value: String) {
    if let old = values[key] {
      guard old != value else { return }
      if previous[key] == nil && !added.contains(key) { previous[key] = old }
    } else {
      added.append(key)
    }
    values[key] = value
  }

  /// Sets `key` only if it has no value yet.
  mutating func setIfAbsent(_ key: String, _ value: String) {
    if values[key] == nil { set(key, value) }
  }

  /// Undoes recorded edits on `values`: removes `added` keys and restores `previous` values in place.
  static func undo(
    _ values: inout OrderedDictionary<String, String>, added: [String],
    previous: OrderedDictionary<String, String>
  ) {
    for key in added { values.removeValue(forKey: key) }
    for (key, value) in previous { values[key] = value }
  }
}
