// Properties of the numbers the model returns, checked through the public API only:
// extreme faces give finite, non-zero embeddings, bad numbers are errors, and results are
// bitwise repeatable and independent of the rest of the batch and of later calls.
//
// Covered elsewhere and not repeated here: NaN and -infinity input (ModelTests
// rejectsNonFiniteInput), NaN and infinite weights named by tensor (ModelTests
// rejectsNonFiniteWeights), zero and non-finite vectors in the normalization kernel
// (KernelTests l2NormalizeRejectsZeroVector and l2NormalizeRejectsNonFiniteVector).

import AuraFace
import Foundation
import Testing

@Suite struct TrustedNumbersTests {
    static let architecture = SyntheticWeights.tinyArchitecture
    static var size: Int { architecture.inputSize }

    static func model() throws -> AuraFaceModel {
        try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 11))
    }

    static func uniformFace(_ value: UInt8) throws -> RGBImage {
        try RGBImage(width: size, height: size, pixels: [UInt8](repeating: value, count: size * size * 3))
    }

    static func noiseFace(seed: UInt64) throws -> RGBImage {
        var random = SeededRandom(seed: seed)
        let pixels = (0..<(size * size * 3)).map { _ in UInt8(truncatingIfNeeded: random.next() >> 56) }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }

    /// Runs `faces` as one batch and returns their raw embeddings.
    static func rawEmbeddings(_ model: AuraFaceModel, _ faces: [RGBImage]) throws -> [[Float]] {
        let input = try model.normalizedInput(faces: faces.map(PixelBuffer.init))
        return try model.rawEmbeddings(normalizedInput: input, batchSize: faces.count)
    }

    @Test(arguments: ["black", "white", "mid-grey", "noise"])
    func extremeFaceGivesFiniteEmbedding(face: String) throws {
        let model = try Self.model()
        let image =
            switch face {
            case "black": try Self.uniformFace(0)
            case "white": try Self.uniformFace(255)
            case "mid-grey": try Self.uniformFace(128)
            default: try Self.noiseFace(seed: 21)
            }
        let raw = try Self.rawEmbeddings(model, [image])[0]
        #expect(raw.count == Self.architecture.embeddingSize)
        #expect(raw.allSatisfy { $0.isFinite }, "\(raw)")
        let norm = raw.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(norm > 0)

        let unit = try AuraFaceModel.l2Normalized(raw)
        #expect(unit.allSatisfy { $0.isFinite })
        let unitNorm = unit.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(unitNorm - 1) < 1e-5)
    }

    @Test func normalizingZeroVectorThrows() {
        let zero = [Float](repeating: 0, count: 512)
        #expect(throws: InferenceError.zeroVector(length: 512)) {
            try AuraFaceModel.l2Normalized(zero)
        }
        #expect(throws: InferenceError.zeroVector(length: 512)) {
            try AuraFaceModel.l2Normalized(zero.map { -$0 })
        }
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteInputThrows(value: Float) throws {
        let model = try Self.model()
        var random = SeededRandom(seed: 22)
        var input = random.floats(3 * Self.size * Self.size)
        input[17] = value
        #expect(throws: InferenceError.nonFiniteInput(count: 1, firstIndex: 17)) {
            try model.rawEmbeddings(normalizedInput: input, batchSize: 1)
        }
        #expect(throws: InferenceError.nonFiniteInput(count: 1, firstIndex: 17)) {
            try model.rawEmbeddings(graphInput: input, batchSize: 1)
        }
    }

    @Test func nonFiniteWeightIsNamedAtLoad() throws {
        let file = try SyntheticWeights.file(
            Self.architecture,
            editTensors: { tensors in
                let index = tensors.firstIndex { $0.name == "layer2.0.conv1.weight" }!
                tensors[index].values[0] = -.infinity
            })
        let error = #expect(throws: WeightFileError.self) { try AuraFaceModel(safeTensors: file) }
        #expect(
            error?.description
                == "'synthetic.safetensors': tensor 'layer2.0.conv1.weight' holds 1 NaN or infinite values")
    }

    @Test func repeatedCallsAreBitwiseEqual() throws {
        let model = try Self.model()
        let faces = [try Self.noiseFace(seed: 23), try Self.uniformFace(90)]
        let first = try Self.rawEmbeddings(model, faces)
        for run in 1...3 {
            #expect(try Self.rawEmbeddings(model, faces) == first, "run \(run)")
        }
        let reloaded = try Self.model()
        #expect(try Self.rawEmbeddings(reloaded, faces) == first)
    }

    /// A wider network at the full 112x112 input, so the matrix products are large enough
    /// for OpenBLAS to split them across threads.
    static let wideArchitecture = IResNetArchitecture(
        stageDepths: [1, 1, 1, 1], stageWidths: [16, 32, 64, 128], stemWidth: 16, embeddingSize: 64,
        inputSize: 112)

    @Test(arguments: ["tiny", "wide"])
    func batchRowsEqualSingleImagesBitwise(network: String) throws {
        let architecture = network == "tiny" ? Self.architecture : Self.wideArchitecture
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 12))
        let size = architecture.inputSize
        func noise(_ seed: UInt64) throws -> RGBImage {
            var random = SeededRandom(seed: seed)
            let pixels = (0..<(size * size * 3)).map { _ in UInt8(truncatingIfNeeded: random.next() >> 56) }
            return try RGBImage(width: size, height: size, pixels: pixels)
        }
        let a = try noise(24)
        let b = try noise(25)
        let c = try RGBImage(width: size, height: size, pixels: [UInt8](repeating: 200, count: size * size * 3))
        let rows = try Self.rawEmbeddings(model, [a, b, a, c])
        #expect(rows.count == 4)
        #expect(rows[0] == rows[2])
        for (index, face) in [(0, a), (1, b), (2, a), (3, c)] {
            let single = try Self.rawEmbeddings(model, [face])[0]
            #expect(rows[index] == single, "row \(index)")
        }
    }

    @Test func earlierResultIsNotChangedByLaterCalls() throws {
        let model = try Self.model()
        let face = try Self.noiseFace(seed: 26)
        let kept = try Self.rawEmbeddings(model, [face])[0]
        let copy = kept.map(\.bitPattern)
        for seed in 27...30 as ClosedRange<UInt64> {
            _ = try Self.rawEmbeddings(model, [try Self.noiseFace(seed: seed), try Self.uniformFace(0)])
        }
        _ = try model.embeddings(faces: [face])
        #expect(kept.map(\.bitPattern) == copy)
    }
}
