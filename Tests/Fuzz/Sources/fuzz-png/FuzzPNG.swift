// libFuzzer entry point for the PNG decoder (IO/PNGImage.swift and the libpng shim).

import AuraFace

/// 1 megapixel keeps one run's pixel buffer at 3 MB. The default limit (100 megapixels) is
/// for photos, and it would make the fuzzer spend its time allocating.
let maxPixelCount = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A thrown PNGError is a correct outcome for a malformed file; only crashes are findings.
    _ = try? PNGImage.header(of: bytes, path: "fuzz.png")
    _ = try? PNGImage.decode(bytes, path: "fuzz.png", maxPixelCount: maxPixelCount)
    return 0
}
