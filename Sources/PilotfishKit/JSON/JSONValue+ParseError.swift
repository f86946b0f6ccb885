extension JSONValue {
  /// Why a text is not one JSON value (or not YAML that converts to JSON), and where.
  package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Syntax: Sendable, Equatable {
      case json
      case yaml
    }

    package var syntax: Syntax
    /// What is wrong (`expected a string key`), without the place.
    package var message: String
    /// 1-based line and column (columns count Unicode scalars); 0 when the problem has no single place, as
    /// a YAML document whose aliases expand beyond the budget.
    package var line: Int
    package var column: Int
    /// The 1-based document of a YAML stream the problem is in; 1 for JSON.
    package var document: Int

    package init(_ syntax: Syntax, _ message: String, line: Int = 0, column: Int = 0, document: Int = 1) {
      self.syntax = syntax
      self.message = message
      self.line = line
      self.column = column
      self.document = document
    }

    /// `not valid JSON at line 1, column 12: expected a string key`.
    package var description: String {
      let place = line > 0 ? " at line \(line), column \(column)" : ""
      return "not valid \(syntax == .json ? "JSON" : "YAML")\(place): \(message)"
    }
  }
}
