import ArgumentParser
import ZMTP
import ZMTPProxy

#if canImport(Glibc)
import Glibc
#endif

// The proxy roles of ../shared/bench/PROTOCOL.md: proxy-dev forwards, proxy-pub publishes into it,
// proxy-sub measures what comes out.

struct ProxyDev: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-dev", abstract: "Bind XSUB (frontend) and no-drop XPUB (backend); forward until SIGTERM.")
    @Argument var frontend: String
    @Argument var backend: String
    @OptionGroup var flags: BenchFlags

    func run() throws {
        flags.armWatchdog()
        Interrupt.install()
        let context = try Context()
        var options = try flags.options(server: true)
        options.linger = .zero
        let xsub = try context.socket(.xsub, options: options)
        options.xpubNoDrop = true
        let xpub = try context.socket(.xpub, options: options)
        try xsub.bind(frontend)
        try xpub.bind(backend)
        let proxy = Proxy(frontend: xsub, backend: xpub)
        Thread.detach {
            while !Interrupt.isRequested { usleep(20_000) }
            proxy.terminate()
        }
        try proxy.run()
        xsub.close()
        xpub.close()
        context.shutdown()
    }
}

struct ProxyPub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-pub", abstract: "Connect a no-drop XPUB to the proxy; after a subscription, send COUNT messages.")
    @Argument var frontend: String
    @Argument var size: Int
    @Argument var count: Int
    @OptionGroup var flags: BenchFlags

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        var options = try flags.options(server: false)
        options.xpubNoDrop = true
        let xpub = try context.socket(.xpub, options: options)
        try xpub.connect(frontend)
        while try xpub.receive().frames[0].first != 1 {}
        let message = Message([UInt8](repeating: 0, count: size))
        let count = self.count
        for _ in 0..<count { try xpub.send(message) }
        // Stay connected until the proxy goes (PROTOCOL.md §2), then exit without dropping anything.
        xpub.waitUntilDisconnected(timeout: .seconds(Int64(flags.timeout)))
        xpub.close()
        context.shutdown()
    }
}

struct ProxySub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-sub", abstract: "Connect XSUB to the proxy, subscribe to everything, time COUNT messages.")
    @Argument var backend: String
    @Argument var size: Int
    @Argument var count: Int
    @OptionGroup var flags: BenchFlags

    func validate() throws { if count < 2 || size < 0 { throw ValidationError("SIZE >= 0 and COUNT >= 2") } }

    func run() throws {
        flags.armWatchdog()
        let context = try Context()
        var options = try flags.options(server: false)
        options.linger = .zero
        let xsub = try context.socket(.xsub, options: options)
        try xsub.connect(backend)
        try xsub.send(Message(single: [1]))
        let elapsed = try timedReceive(xsub, size: size, count: count)
        printThroughput(test: "proxy", endpoint: backend, flags: flags, size: size, count: count, elapsed: elapsed)
        xsub.close()
        context.shutdown()
    }
}
