import ZMTPFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let violation = FuzzTarget.curveServer.run(Array(UnsafeBufferPointer(start: data, count: count))) { fatalError(violation) }
    return 0
}
