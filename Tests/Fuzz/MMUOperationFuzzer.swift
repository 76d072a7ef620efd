// libFuzzer entry of the MMU-operation target (SLATFuzzTargets'
// MMUOperationTarget: bytes → public-API calls on an EPT or stage-2 MMU,
// checked against a reference model after each). Built by Tests/Fuzz/run
// (not a package target: it needs -sanitize=fuzzer). A problem aborts, so
// libFuzzer keeps the input.
import SLATFuzzTargets
#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    if let problem = MMUOperationTarget.run(UnsafeRawBufferPointer(start: data, count: size)) {
        print(problem)
        // stdout is buffered when it is a file: flush before the abort.
        fflush(nil)
        abort()
    }
    return 0
}
