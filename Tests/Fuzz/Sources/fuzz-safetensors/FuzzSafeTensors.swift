// libFuzzer entry point for the safetensors reader (Weights/SafeTensors.swift), the weight
// file metadata checks (Weights/WeightFileMetadata.swift), the tensor hash check and the
// model loader's tensor checks (Model/IResNetLoading.swift) through AuraFaceModel.

import AuraFace

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // Every step may throw WeightFileError, which is a correct outcome for a malformed file.
    guard let file = try? SafeTensorsFile(bytes: bytes, path: "fuzz.safetensors") else {
        return 0
    }
    for entry in file.entries {
        let values = file.floats(for: entry)
        precondition(values.count == entry.elementCount, "\(entry.name): wrong value count")
    }
    guard let metadata = try? WeightFileMetadata(dictionary: file.metadata, path: file.path) else {
        return 0
    }
    _ = file.tensorHashMismatches(metadata.tensorSHA256 ?? [:])
    do {
        _ = try AuraFaceModel(safeTensors: file, threads: 1)
    } catch is WeightFileError {
        // Tensors that do not match the metadata's architecture: a correct outcome.
    } catch {
        // BLASError would mean OpenBLAS is missing, a broken setup rather than a finding.
        fatalError("AuraFaceModel threw \(type(of: error)): \(error)")
    }
    return 0
}
