// libFuzzer entry point for the protobuf decoder (Protobuf/ProtobufReader.swift), the ONNX
// messages (ONNX/ONNXModel.swift, ONNXTensor.swift), tensor values from raw_data, typed
// fields and external data (ONNX/ONNXTensor+Values.swift), and the converter's graph walk.

import AuraFace
import AuraFaceONNX
import Foundation

/// A folder with one external data file, `weights.data`, so that tensors whose
/// `external_data` names it are read from disk. The seed graph with external data refers to
/// it; its values are zeros, which the converter accepts like any other finite weights.
let externalDataDirectory: URL = {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "auraface-fuzz-onnx-\(getpid())", isDirectory: true)
    try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent("weights.data")
    try! Data(count: 1 << 16).write(to: file)
    atexit {
        try? FileManager.default.removeItem(at: externalDataDirectory)
    }
    return directory
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let storage = ByteStorage(copying: UnsafeBufferPointer(start: data, count: size))
    // Every step may throw ONNXError or ConversionError, a correct outcome for a malformed file.
    guard
        let model = try? ONNXModel(
            storage: storage, externalDataDirectory: externalDataDirectory, path: "fuzz.onnx")
    else {
        return 0
    }
    var tensors = model.graph.initializers
    for node in model.graph.nodes {
        for attribute in node.attributes {
            tensors += attribute.t.map { [$0] } ?? []
            tensors += attribute.tensors
        }
    }
    for tensor in tensors {
        if let values = try? tensor.floatValues() {
            precondition(values.count == (try? tensor.elementCount()), "\(tensor.name): count")
        }
        if let values = try? tensor.int64Values() {
            precondition(values.count == (try? tensor.elementCount()), "\(tensor.name): count")
        }
    }
    _ = try? ONNXConverter.convert(model, sourceFile: "fuzz.onnx")
    return 0
}
