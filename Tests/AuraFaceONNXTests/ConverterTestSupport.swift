import AuraFace
import Foundation
import Testing

import AuraFaceONNX

/// Decodes and converts an in-memory test graph.
func convertGraph(_ graph: TestGraph, options: ONNXConversionOptions = .init()) throws
    -> ConvertedModel
{
    let model = try ONNXModel(
        storage: ByteStorage(copying: graph.encoded), externalDataDirectory: nil, path: "test.onnx")
    return try ONNXConverter.convert(model, sourceFile: "test.onnx", options: options)
}

/// Converts `graph` and returns the error it raises, or nil after recording a test failure.
func conversionError(
    _ graph: TestGraph, options: ONNXConversionOptions = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConversionError? {
    do {
        _ = try convertGraph(graph, options: options)
        Issue.record("conversion succeeded, expected an error", sourceLocation: sourceLocation)
    } catch let error as ConversionError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Checks a converted model's tensors against the builder's expected PyTorch tensors.
func expectTensors(
    _ converted: ConvertedModel, match built: TinyIResNet.Built,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let names = converted.tensors.map(\.name)
    #expect(Set(names) == Set(built.expected.keys), sourceLocation: sourceLocation)
    for tensor in converted.tensors {
        guard let expected = built.expected[tensor.name] else { continue }
        #expect(tensor.values == expected, "\(tensor.name)", sourceLocation: sourceLocation)
    }
    let architecture = converted.metadata.architecture
    let layout = architecture.expectedTensors(
        foldedBatchNorms: Set(converted.metadata.foldedBatchNorms))
    #expect(layout.map(\.name) == names, sourceLocation: sourceLocation)
    #expect(layout.map(\.shape) == converted.tensors.map(\.shape), sourceLocation: sourceLocation)
    #expect(
        Set(converted.metadata.foldedBatchNorms) == Set(built.folded),
        sourceLocation: sourceLocation)
}

/// Creates an empty folder under the system's temporary folder.
func makeTemporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "auraface-onnx-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
