import Testing

/// The suites that open sockets, run one after another: the descriptor-leak tests count the whole process's
/// open files, which another suite's sockets would change under them.
@Suite(.serialized) enum SocketSuites {}
