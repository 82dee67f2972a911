// libFuzzer entry point for the landmarks file reader (Alignment/LandmarksFile.swift): JSON
// object, JSON array, JSON lines and text layouts.

import AuraFace
import Foundation

let baseDirectory = URL(fileURLWithPath: "/fuzz/photos", isDirectory: true)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLandmarks(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // LandmarksFile(contentsOf:) rejects bytes that are not UTF-8 before parsing, as this does.
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let text = String(validating: bytes, as: UTF8.self) else {
        return 0
    }
    // A thrown LandmarksFileError is a correct outcome for a malformed file.
    guard let file = try? LandmarksFile(text: text, path: "fuzz.txt", baseDirectory: baseDirectory)
    else {
        return 0
    }
    for entry in file.entries {
        precondition(
            file.landmarks(for: entry.url) == entry.landmarks,
            "landmarks for '\(entry.image)' are not found by their own URL")
    }
    return 0
}
