// libFuzzer entry of the script-parser target (SLATFuzzTargets'
// ScriptParserTarget: bytes as a mapping script and a registers file; typed
// errors only, never a trap). Built by Tests/Fuzz/run.
import SLATFuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    ScriptParserTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
