// libFuzzer entry point for the NumPy .npy reader (IO/NpyFile.swift), header parser included.

import AuraFace

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNpy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A thrown NpyError is a correct outcome for a malformed file; only crashes are findings.
    guard let array = try? NpyArray(bytes: bytes, path: "fuzz.npy") else {
        return 0
    }
    // A file that parses must write back to the same bytes' meaning: same shape and values.
    let reread = try! NpyArray(bytes: array.serialized(), path: "fuzz.npy")
    precondition(reread.shape == array.shape, "shape \(array.shape) reads back as \(reread.shape)")
    precondition(
        reread.values.elementsEqual(array.values) { $0.bitPattern == $1.bitPattern },
        "values of shape \(array.shape) do not read back bit for bit")
    return 0
}
