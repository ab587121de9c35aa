import HTTP1Differential

/// libFuzzer's entry point: every input, read as the responses to GETs and then to HEADs, must be
/// read the same by our decoder and by NIO's llhttp, or refused by ours
/// (``HTTP1ResponseDifferential``); anything else stops the run with the input saved.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1Response(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    for toHEAD in [false, true] {
        if case .mismatch(let difference) = HTTP1ResponseDifferential.check(input, toHEAD: toHEAD) {
            fatalError("differential mismatch (HEAD: \(toHEAD)): \(difference)\ninput: \(input)")
        }
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// SwiftPM links an executable target's entry point as `<Module>_main` (and defines `main` as
/// that symbol), so libFuzzer's own `main` is never linked: start its driver from here.
@_cdecl("FuzzHTTP1Response_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzHTTP1Response)
}
