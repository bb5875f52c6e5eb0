import ZMTP

/// Socket options for tests: 5 s timeouts (a broken test fails instead of hanging), fast reconnects,
/// no linger; `adjust` changes what a test needs.
public func testSocketOptions(_ adjust: (inout SocketOptions) -> Void = { _ in }) -> SocketOptions {
    var options = SocketOptions()
    options.receiveTimeout = .seconds(5)
    options.sendTimeout = .seconds(5)
    options.reconnectInterval = .milliseconds(20)
    options.linger = .zero
    adjust(&options)
    return options
}
