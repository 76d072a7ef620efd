// libFuzzer entry of the table-operation target (SLATFuzzTargets'
// TableOperationTarget: bytes → SLATCore table operations checked by
// SLATSim's TableHarness). Built by Tests/Fuzz/run (not a package target:
// it needs -sanitize=fuzzer). A problem aborts, so libFuzzer keeps the input.
import SLATFuzzTargets
#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    if let problem = TableOperationTarget.run(UnsafeRawBufferPointer(start: data, count: size)) {
        print(problem)
        // stdout is buffered when it is a file: flush before the abort.
        fflush(nil)
        abort()
    }
    return 0
}
