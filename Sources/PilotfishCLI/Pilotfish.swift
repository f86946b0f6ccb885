import ArgumentParser

/// `pilotfish`: the sidecar's command line. Each subcommand maps flags to one library call.
@main
struct Pilotfish: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pilotfish",
    abstract:
      "Pilotfish: a service-mesh sidecar — traffic interception, agent, proxy and injector in one package.",
    subcommands: [
      IstioIptables.self, Inject.self, Webhook.self, Bootstrap.self, Proxy.self, Wait.self, Request.self,
      ExecAs.self,
    ]
  )
}
