// libFuzzer entry point for the JPEG decoder (IO/JPEGImage.swift through TurboJPEG) and the
// EXIF orientation parser (IO/EXIFOrientation.swift), which runs after a successful decode.

import AuraFace

/// 1 megapixel keeps one run's pixel buffer at 3 MB; see fuzz-png.
let maxPixelCount = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A thrown JPEGError is a correct outcome for a malformed file; only crashes are findings.
    _ = try? JPEGImage.decode(bytes, path: "fuzz.jpg", maxPixelCount: maxPixelCount)
    return 0
}
