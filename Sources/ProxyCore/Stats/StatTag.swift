/// One tag extracted from a stat name (Envoy's `Stats::Tag`), e.g. `envoy.cluster_name` = `xds-grpc`.
package struct StatTag: Sendable, Hashable, CustomStringConvertible {
  package var name: String
  package var value: String

  package init(name: String, value: String) {
    self.name = name
    self.value = value
  }

  package var description: String { "\(name)=\(value)" }
}

/// What the store works out once, when a stat is created: its full name, the name with tag values
/// removed, and the tags.
package struct StatIdentity: Sendable, Equatable {
  package let name: String
  package let tagExtractedName: String
  package let tags: [StatTag]
}
