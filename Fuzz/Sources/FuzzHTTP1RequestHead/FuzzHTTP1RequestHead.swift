import HTTP1Differential

/// libFuzzer's entry point: every input must be read the same by our parser and by NIO's llhttp,
/// or refused by ours (``HTTP1Differential``); anything else stops the run with the input saved.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1RequestHead(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    if case .mismatch(let difference) = HTTP1Differential.check(input) {
        fatalError("differential mismatch: \(difference)\ninput: \(input)")
    }
    return 0
}
