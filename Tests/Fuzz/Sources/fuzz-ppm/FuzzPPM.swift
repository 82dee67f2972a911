// libFuzzer entry point for the binary PPM/PGM decoder (IO/PPMImage.swift) and the format
// dispatch of PhotoFile, which picks PNG, JPEG or PPM by the leading bytes.

import AuraFace

/// 1 megapixel keeps one run's pixel buffer at 3 MB; see fuzz-png.
let maxPixelCount = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPPM(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A thrown PPMError is a correct outcome for a malformed file; only crashes are findings.
    _ = try? PPMImage.decode(bytes, path: "fuzz.ppm", maxPixelCount: maxPixelCount)
    return 0
}
