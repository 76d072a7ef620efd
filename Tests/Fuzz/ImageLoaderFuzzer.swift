// libFuzzer entry of the image-loader target (SLATFuzzTargets'
// ImageLoaderTarget: bytes as a table image read by slat dump, translate
// and svg; typed errors only, never a trap). Built by Tests/Fuzz/run.
import SLATFuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    ImageLoaderTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
