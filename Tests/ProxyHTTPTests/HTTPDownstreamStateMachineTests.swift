import Testing

@testable import ProxyHTTP

@Suite struct HTTPDownstreamStateMachineTests {
  typealias Machine = HTTPConnectionManager.StateMachine

  @Test func keepAliveExchange() {
    var m = Machine()
    #expect(m.shouldRead(hasBacklog: false, upstreamWritable: true, downstreamWritable: true))
    m.requestStarted(keepAlive: true)
    m.requestCompleted()
    // A pipelined request waits; with none, reading goes on (to see a FIN).
    #expect(!m.shouldRead(hasBacklog: true, upstreamWritable: true, downstreamWritable: true))
    #expect(m.shouldRead(hasBacklog: false, upstreamWritable: false, downstreamWritable: true))
    #expect(
      m.responseHeadStarted(status: 200, draining: false, bodyUntilClose: false)
        == .writeHead(close: false, drainClose: false))
    #expect(m.responseCompleted() == .keepAlive)
    #expect(m.isIdle)
  }

  @Test func closeCases() {
    var m = Machine()
    m.requestStarted(keepAlive: false)
    m.requestCompleted()
    #expect(
      m.responseHeadStarted(status: 200, draining: false, bodyUntilClose: false)
        == .writeHead(close: true, drainClose: false))
    #expect(m.responseCompleted() == .close)

    m = Machine()
    m.requestStarted(keepAlive: true)
    m.requestCompleted()
    #expect(
      m.responseHeadStarted(status: 200, draining: true, bodyUntilClose: false)
        == .writeHead(close: true, drainClose: true))
    #expect(m.responseCompleted() == .close)

    m = Machine()
    m.requestStarted(keepAlive: true)
    m.requestCompleted()
    #expect(
      m.responseHeadStarted(status: 200, draining: false, bodyUntilClose: true)
        == .writeHead(close: true, drainClose: false))
  }

  @Test func responseBeforeRequestEndsClosesAfterIt() {
    var m = Machine()
    m.requestStarted(keepAlive: true)
    #expect(
      m.responseHeadStarted(status: 200, draining: false, bodyUntilClose: false)
        == .writeHead(close: false, drainClose: false))
    #expect(m.shouldRead(hasBacklog: false, upstreamWritable: true, downstreamWritable: true))
    // Backpressure.
    #expect(!m.shouldRead(hasBacklog: false, upstreamWritable: false, downstreamWritable: true))
    m.requestCompleted()  // an echo: the request ends before the response
    #expect(m.responseCompleted() == .keepAlive)

    m = Machine()
    m.requestStarted(keepAlive: true)
    _ = m.responseHeadStarted(status: 413, draining: false, bodyUntilClose: false)
    #expect(m.responseCompleted() == .close)
  }

  @Test func clientFin() {
    var m = Machine()
    #expect(m.clientInputClosed() == .close)

    m = Machine()
    m.requestStarted(keepAlive: true)
    #expect(m.clientInputClosed() == .resetStream)
    #expect(m.isClosing)

    m = Machine()
    m.requestStarted(keepAlive: true)
    m.requestCompleted()
    #expect(m.clientInputClosed() == .closeAfterResponse)
    #expect(
      m.responseHeadStarted(status: 200, draining: false, bodyUntilClose: false)
        == .writeHead(close: true, drainClose: false))
    #expect(m.responseCompleted() == .close)
  }

  @Test func upgrade() {
    var m = Machine()
    m.requestStarted(keepAlive: true)
    m.requestCompleted()
    #expect(m.responseHeadStarted(status: 101, draining: false, bodyUntilClose: false) == .upgrade)
    #expect(m.isTunnel)
    #expect(m.shouldRead(hasBacklog: false, upstreamWritable: true, downstreamWritable: true))
    #expect(!m.shouldRead(hasBacklog: false, upstreamWritable: false, downstreamWritable: true))
    #expect(m.clientInputClosed() == .halfCloseTunnel)
  }
}
