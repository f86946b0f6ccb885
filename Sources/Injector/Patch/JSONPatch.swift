package import PilotfishKit

/// An RFC 6902 JSON Patch limited to the operations a diff needs (`add`, `remove`, `replace`), as sent in
/// an AdmissionReview response.
///
/// ``diff(from:to:)`` is minimal in the sense that equal subtrees produce no operation and objects are
/// compared key by key. Arrays are compared index by index: changed elements are patched in place (objects
/// recursively, anything else replaced), appended elements are added at their index in ascending order, and
/// surplus elements are removed from the last index down, so every index is valid when its operation runs.
package struct JSONPatch: Sendable, Equatable {
  package enum Operation: Sendable, Equatable {
    case add(path: JSONPointer, value: JSONValue)
    case remove(path: JSONPointer)
    case replace(path: JSONPointer, value: JSONValue)

    package var path: JSONPointer {
      switch self {
      case .add(let path, _), .remove(let path), .replace(let path, _): return path
      }
    }
  }

  package var operations: [Operation]

  package init(_ operations: [Operation] = []) {
    self.operations = operations
  }

  package var isEmpty: Bool { operations.isEmpty }

  /// The operations that turn `source` into `target`.
  package static func diff(from source: JSONValue, to target: JSONValue) -> JSONPatch {
    var operations: [Operation] = []
    collect(from: source, to: target, at: JSONPointer(), into: &operations)
    return JSONPatch(operations)
  }

  private static func collect(
    from source: JSONValue, to target: JSONValue, at path: JSONPointer, into operations: inout [Operation]
  ) {
    if source == target { return }
    switch (source, target) {
    case (.object(let a), .object(let b)):
      for (key, old) in a {
        if let new = b[key] {
          collect(from: old, to: new, at: path.appending(key), into: &operations)
        } else {
          operations.append(.remove(path: path.appending(key)))
        }
      }
      for (key, new) in b where a[key] == nil {
        operations.append(.add(path: path.appending(key), value: new))
      }
    case (.array(let a), .array(let b)):
      for index in 0..<min(a.count, b.count) {
        let element = path.appending(String(index))
        switch (a[index], b[index]) {
        case (.object, .object), (.array, .array):
          collect(from: a[index], to: b[index], at: element, into: &operations)
        default:
          if a[index] != b[index] { operations.append(.replace(path: element, value: b[index])) }
        }
      }
      if b.count > a.count {
        for index in a.count..<b.count {
          operations.append(.add(path: path.appending(String(index)), value: b[index]))
        }
      } else if a.count > b.count {
        for index in (b.count..<a.count).reversed() {
          operations.append(.remove(path: path.appending(String(index))))
        }
      }
    default:
      operations.append(.replace(path: path, value: target))
    }
  }
}

// MARK: - Encoding and decoding

extension JSONPatch {
  /// The patch as a JSON array of `{"op", "path", "value"}` objects.
  package var jsonValue: JSONValue {
    .array(
      operations.map { operation in
        switch operation {
        case .add(let path, let value):
          return ["op": "add", "path": .string(path.description), "value": value]
        case .remove(let path): return ["op": "remove", "path": .string(path.description)]
        case .replace(let path, let value):
          return ["op": "replace", "path": .string(path.description), "value": value]
        }
      })
  }

  /// Compact JSON text of ``jsonValue``.
  package var jsonText: String { jsonValue.jsonText }

  /// Reads a patch document (a JSON array of operations). Only `add`, `remove` and `replace` are known.
  package init(_ document: JSONValue) throws(JSONPatchError) {
    guard let items = document.arrayValue else {
      throw JSONPatchError(operation: nil, message: "a JSON Patch is an array of operations")
    }
    var operations: [Operation] = []
    for (index, item) in items.enumerated() {
      guard let op = item["op"]?.stringValue else {
        throw JSONPatchError(operation: index, message: "missing or non-string \"op\"")
      }
      guard let text = item["path"]?.stringValue else {
        throw JSONPatchError(operation: index, message: "missing or non-string \"path\"")
      }
      let path = try JSONPointer(parsing: text, operation: index)
      switch op {
      case "add", "replace":
        guard let value = item["value"] else {
          throw JSONPatchError(operation: index, message: "\"\(op)\" without \"value\"")
        }
        operations.append(op == "add" ? .add(path: path, value: value) : .replace(path: path, value: value))
      case "remove":
        operations.append(.remove(path: path))
      default:
        throw JSONPatchError(operation: index, message: "unsupported op \"\(op)\"")
      }
    }
    self.init(operations)
  }
}

// MARK: - Applying

extension JSONPatch {
  /// Applies the operations in order, as RFC 6902 specifies (used by tests and `--uninject` checks).
  package func apply(to document: JSONValue) throws(JSONPatchError) -> JSONValue {
    var result = document
    for (index, operation) in operations.enumerated() {
      switch operation {
      case .add(let path, let value):
        try Self.modify(&result, at: path, depth: 0, operation: index, mode: .add(value))
      case .remove(let path):
        try Self.modify(&result, at: path, depth: 0, operation: index, mode: .remove)
      case .replace(let path, let value):
        try Self.modify(&result, at: path, depth: 0, operation: index, mode: .replace(value))
      }
    }
    return result
  }

  private enum Mode {
    case add(JSONValue)
    case remove
    case replace(JSONValue)
  }

  private static func modify(
    _ value: inout JSONValue, at path: JSONPointer, depth: Int, operation: Int, mode: Mode
  ) throws(JSONPatchError) {
    guard depth < path.tokens.count else {
      switch mode {
      case .add(let new), .replace(let new): value = new
      case .remove: throw JSONPatchError(operation: operation, message: "cannot remove the whole document")
      }
      return
    }
    let token = path.tokens[depth]
    let isLast = depth == path.tokens.count - 1
    let here = JSONPointer(Array(path.tokens[...depth]))
    switch value {
    case .object(var object):
      if isLast {
        switch mode {
        case .add(let new):
          object[token] = new
        case .replace(let new):
          guard object[token] != nil else {
            throw JSONPatchError(operation: operation, message: "\(here): no such member to replace")
          }
          object[token] = new
        case .remove:
          guard object.removeValue(forKey: token) != nil else {
            throw JSONPatchError(operation: operation, message: "\(here): no such member to remove")
          }
        }
      } else {
        guard var child = object[token] else {
          throw JSONPatchError(operation: operation, message: "\(here): no such member")
        }
        try modify(&child, at: path, depth: depth + 1, operation: operation, mode: mode)
        object[token] = child
      }
      value = .object(object)
    case .array(var array):
      let count = array.count
      let index: Int
      if token == "-", isLast, case .add = mode {
        index = count
      } else if let parsed = Int(token), parsed >= 0, String(parsed) == token {
        index = parsed
      } else {
        throw JSONPatchError(operation: operation, message: "\(here): \"\(token)\" is not an array index")
      }
      if isLast {
        switch mode {
        case .add(let new):
          guard index <= count else {
            throw JSONPatchError(
              operation: operation, message: "\(here): index out of range (count \(count))")
          }
          array.insert(new, at: index)
        case .replace(let new):
          guard index < count else {
            throw JSONPatchError(
              operation: operation, message: "\(here): index out of range (count \(count))")
          }
          array[index] = new
        case .remove:
          guard index < count else {
            throw JSONPatchError(
              operation: operation, message: "\(here): index out of range (count \(count))")
          }
          array.remove(at: index)
        }
      } else {
        guard index < count else {
          throw JSONPatchError(operation: operation, message: "\(here): index out of range (count \(count))")
        }
        var child = array[index]
        try modify(&child, at: path, depth: depth + 1, operation: operation, mode: mode)
        array[index] = child
      }
      value = .array(array)
    default:
      throw JSONPatchError(operation: operation, message: "\(here): parent is neither an object nor an array")
    }
  }
}

/// A patch that cannot be read or applied: which operation (0-based) and what is wrong.
package struct JSONPatchError: Error, Sendable, Equatable, CustomStringConvertible {
  package var operation: Int?
  package var message: String

  package init(operation: Int?, message: String) {
    self.operation = operation
    self.message = message
  }

  package var description: String {
    operation.map { "operation \($0): \(message)" } ?? message
  }
}
