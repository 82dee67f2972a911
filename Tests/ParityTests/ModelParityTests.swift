// End-to-end parity against onnxruntime. Each fixture graph in Tests/Fixtures/parity is
// converted with the Swift converter, loaded into the engine and run on the committed input.
// The raw output must match onnxruntime's committed output. Tools/make_test_graphs.py made the
// fixtures; Tests/Fixtures/README.md lists their seeds and the onnxruntime version.

import AuraFace
import AuraFaceONNX
import Foundation
import Testing

private let parityDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .appendingPathComponent("Fixtures/parity")

/// Cosine similarity and max absolute difference of two equally long vectors, in Double.
private func compare(_ expected: ArraySlice<Float>, _ actual: [Float]) -> (cosine: Double, maxDiff: Double) {
    var dot = 0.0
    var expectedNorm = 0.0
    var actualNorm = 0.0
    var maxDiff = 0.0
    for (e, a) in zip(expected, actual) {
        dot += Double(e) * Double(a)
        expectedNorm += Double(e) * Double(e)
        actualNorm += Double(a) * Double(a)
        maxDiff = max(maxDiff, abs(Double(e) - Double(a)))
    }
    return (dot / (expectedNorm.squareRoot() * actualNorm.squareRoot()), maxDiff)
}

/// Converts `<name>.onnx`, writes the safetensors file to a temporary folder and loads it, so
/// the test covers the file format as well as the math.
private func convertAndLoad(_ name: String) throws -> AuraFaceModel {
    let converted = try ONNXConverter.convert(modelAt: parityDirectory.appendingPathComponent("\(name).onnx"))
    let folder = FileManager.default.temporaryDirectory
        .appendingPathComponent("auraface-parity-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let weights = folder.appendingPathComponent("\(name).safetensors")
    try converted.write(to: weights)
    return try AuraFaceModel(contentsOf: weights)
}

@Suite struct ModelParityTests {
    @Test(arguments: ["r18", "r100", "r18-mxnet-unfolded"])
    func engineMatchesOnnxRuntime(fixture: String) throws {
        let model = try convertAndLoad(fixture)
        let input = try NpyArray(contentsOf: parityDirectory.appendingPathComponent("\(fixture).input.npy"))
        let expected = try NpyArray(contentsOf: parityDirectory.appendingPathComponent("\(fixture).expected.npy"))
        let batchSize = input.shape[0]
        let embeddingSize = model.architecture.embeddingSize
        #expect(expected.shape == [batchSize, embeddingSize])

        let output = try model.rawEmbeddings(graphInput: input.values, batchSize: batchSize)
        #expect(output.count == batchSize)

        let expectedScale = Double(expected.values.map { abs($0) }.max() ?? 0)
        #expect(expectedScale > 0)
        for row in 0..<batchSize {
            let expectedRow = expected.values[(row * embeddingSize)..<((row + 1) * embeddingSize)]
            let (cosine, maxDiff) = compare(expectedRow, output[row])
            #expect(cosine >= 0.99999, "\(fixture) row \(row): cosine \(cosine)")
            #expect(maxDiff <= 1e-4 * expectedScale, "\(fixture) row \(row): max |diff| \(maxDiff), max |expected| \(expectedScale)")
        }
    }

    @Test func batchRowsEqualSingleImageRuns() throws {
        // Row i of batch [A, B, A, C] must equal the result for that face alone, bit for bit.
        let model = try convertAndLoad("r18")
        let input = try NpyArray(contentsOf: parityDirectory.appendingPathComponent("r18.input.npy"))
        let faceSize = input.values.count / input.shape[0]
        let faces = (0..<3).map { Array(input.values[($0 * faceSize)..<(($0 + 1) * faceSize)]) }
        let batch = faces[0] + faces[1] + faces[0] + faces[2]

        let batched = try model.rawEmbeddings(graphInput: batch, batchSize: 4)
        let singles = try faces.map { try model.rawEmbeddings(graphInput: $0, batchSize: 1)[0] }

        #expect(batched[0] == singles[0])
        #expect(batched[1] == singles[1])
        #expect(batched[2] == singles[0])
        #expect(batched[3] == singles[2])
    }

    @Test(arguments: [5, 7, 12])
    func everyBatchSizeGivesTheSameBits(batchSize: Int) throws {
        // OpenBLAS sums a batched fc product in another order for some batch sizes, so the
        // engine runs fc per image and no batch size changes a single bit.
        let model = try convertAndLoad("r18")
        let input = try NpyArray(contentsOf: parityDirectory.appendingPathComponent("r18.input.npy"))
        let faceSize = input.values.count / input.shape[0]
        let faces = (0..<3).map { Array(input.values[($0 * faceSize)..<(($0 + 1) * faceSize)]) }
        let singles = try faces.map { try model.rawEmbeddings(graphInput: $0, batchSize: 1)[0] }

        let batch = (0..<batchSize).flatMap { faces[$0 % 3] }
        let batched = try model.rawEmbeddings(graphInput: batch, batchSize: batchSize)

        for row in 0..<batchSize {
            #expect(batched[row] == singles[row % 3], "row \(row) of a batch of \(batchSize)")
        }
    }
}
