import ZMTPFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let violation = FuzzTarget.curveClient.run(Array(UnsafeBufferPointer(start: data, count: count))) { fatalError(violation) }
    return 0
}
