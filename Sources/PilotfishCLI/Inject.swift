import ArgumentParser
import Foundation
import Injector

/// The injector settings both `inject` and `webhook` take: a settings file, then flags over it.
struct InjectorSettingsOptions: ParsableArguments {
  @Option(
    name: .customLong("injector-config"),
    help: "YAML file of injector settings (field names as in InjectorSettings).")
  var injectorConfig: String?
  @Option(name: .customLong("proxy-image"), help: "Image of the injected init and proxy containers.")
  var proxyImage: String?
  @Option(name: .customLong("native-sidecars"), help: "enabled, disabled or auto (default auto).")
  var nativeSidecars: String?
  @Option(name: .customLong("revision"), help: "The injector's revision (istio.io/rev), default \"default\".")
  var revision: String?

  func settings() throws(ManifestError) -> InjectorSettings {
    try InjectorConfigFile.resolve(
      configPath: injectorConfig, proxyImage: proxyImage, nativeSidecars: nativeSidecars, revision: revision)
  }
}

/// `pilotfish inject`: istioctl kube-inject — adds (or removes) the sidecar in a manifest's workloads.
struct Inject: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inject",
    abstract: "Add the Pilotfish sidecar to the workloads of a Kubernetes manifest (or remove it).",
    discussion: """
      Reads YAML documents or a JSON document; mutates Pods, Deployments, StatefulSets, DaemonSets, \
      ReplicaSets, ReplicationControllers, Jobs, CronJobs and the items of Lists; passes everything else \
      through. Prints the result in the input's format. Pods the injection policy skips are noted on \
      standard error. Exit codes: 0 success, 1 error.
      """
  )

  @Option(
    name: [.customShort("f"), .customLong("filename")], help: "Manifest to read, or - for standard input.")
  var filename: String
  @Option(
    name: [.customShort("o"), .customLong("output")], help: "File to write (default: standard output).")
  var output: String?
  @Flag(name: .customLong("uninject"), help: "Remove an injected sidecar instead of adding one.")
  var uninject = false
  @Option(name: .customLong("namespace"), help: "Namespace of objects without metadata.namespace.")
  var namespace = "default"
  @OptionGroup var injector: InjectorSettingsOptions

  func run() throws {
    do {
      let settings = try injector.settings()
      let injector = ManifestInjector(
        options: .init(defaultNamespace: namespace, uninject: uninject, settings: settings))
      let result = try injector.process(try Manifest.readText(from: filename))
      for note in result.notes {
        FileHandle.standardError.write(Data("pilotfish inject: \(note)\n".utf8))
      }
      try Manifest.write(result.text, to: output)
    } catch {
      FileHandle.standardError.write(Data("pilotfish inject: error: \(error.message)\n".utf8))
      throw ExitCode.failure
    }
  }
}
