// Helpers shared by the engine tests: seeded random data, a comparison with a tolerance
// relative to the reference's magnitude, and synthetic IResNet weight files.

import Foundation
import Testing

@testable import AuraFace

/// A deterministic generator (SplitMix64), so every failure reproduces with the same data.
struct SeededRandom {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Draws a float uniformly distributed in `range`.
    mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        let unit = Float(next() >> 40) / Float(1 << 24)
        return range.lowerBound + unit * (range.upperBound - range.lowerBound)
    }

    mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in uniform(range) }
    }
}

/// Computes the largest absolute difference between two arrays, divided by the largest
/// magnitude in `expected` or by 1 when that is smaller. This measures error relative to the
/// scale of the values. Per element, cancellation would make relative error meaningless.
func relativeMaxDifference(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "\(actual.count) vs \(expected.count) values")
    var maxDifference: Float = 0
    var maxMagnitude: Float = 0
    for (a, e) in zip(actual, expected) {
        maxDifference = max(maxDifference, abs(a - e))
        maxMagnitude = max(maxMagnitude, abs(e))
    }
    if actual.contains(where: { $0.isNaN }) {
        return .nan
    }
    return maxDifference / max(maxMagnitude, 1)
}

/// Expects `actual` to match `expected` within `tolerance` relative to `expected`'s scale.
func expectClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float = 1e-5,
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, comment, sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let difference = relativeMaxDifference(actual, expected)
    #expect(difference <= tolerance, comment, sourceLocation: sourceLocation)
}

/// Synthetic IResNet weights: random values of realistic scale for every tensor an
/// architecture needs, in PyTorch naming.
enum SyntheticWeights {
    /// A small architecture that exercises every code path at test speed: odd block counts,
    /// channel changes in every stage, a 2x2 final map and an 8-d embedding.
    static let tinyArchitecture = IResNetArchitecture(
        stageDepths: [1, 2, 1, 1], stageWidths: [4, 8, 8, 16], stemWidth: 4, embeddingSize: 8,
        inputSize: 32)

    /// Lists every batch norm that follows a convolution or fc, which an exporter may fold.
    static func foldableBatchNorms(_ architecture: IResNetArchitecture) -> [String] {
        architecture.batchNorms.filter { $0.follows != nil }.map(\.name)
    }

    /// Unfolded tensors: conv weights with fan-in scaling, batch norms near identity with
    /// positive variances, PReLU slopes in 0.1...0.3.
    static func unfoldedTensors(
        _ architecture: IResNetArchitecture, seed: UInt64
    ) -> [(name: String, shape: [Int], values: [Float])] {
        var random = SeededRandom(seed: seed)
        return architecture.expectedTensors(foldedBatchNorms: []).map { name, shape in
            let count = shape.reduce(1, *)
            let values: [Float]
            if name.hasSuffix(".running_var") {
                values = random.floats(count, in: 0.5...1.5)
            } else if name.hasSuffix(".running_mean") || name.hasSuffix(".bias") {
                values = random.floats(count, in: -0.2...0.2)
            } else if name.hasSuffix("prelu.weight") {
                values = random.floats(count, in: 0.1...0.3)
            } else if shape.count == 1 {
                // Batch norm gamma.
                values = random.floats(count, in: 0.8...1.2)
            } else {
                let fanIn = Float(shape.dropFirst().reduce(1, *))
                let bound = (3 / fanIn).squareRoot()
                values = random.floats(count, in: -bound...bound)
            }
            return (name, shape, values)
        }
    }

    /// Folds the batch norm after each convolution or fc named in `folded` into that layer,
    /// in Double, as an ONNX exporter does: w' = w * s, b' = (b - mean) * s + beta with
    /// s = gamma / sqrt(var + eps), per output channel.
    static func fold(
        _ tensors: [(name: String, shape: [Int], values: [Float])],
        architecture: IResNetArchitecture, folded: Set<String>, eps: Float
    ) -> [(name: String, shape: [Int], values: [Float])] {
        var byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, ($0.shape, $0.values)) })
        for norm in architecture.batchNorms where folded.contains(norm.name) {
            let layer = norm.follows!
            let gamma = byName[norm.name + ".weight"]!.1
            let beta = byName[norm.name + ".bias"]!.1
            let mean = byName[norm.name + ".running_mean"]!.1
            let variance = byName[norm.name + ".running_var"]!.1
            let weightShape = byName[layer + ".weight"]!.0
            var weight = byName[layer + ".weight"]!.1
            let oldBias = byName[layer + ".bias"]?.1 ?? [Float](repeating: 0, count: norm.channels)
            let perChannel = weight.count / norm.channels
            var bias = [Float](repeating: 0, count: norm.channels)
            for c in 0..<norm.channels {
                let s = Double(gamma[c]) / (Double(variance[c]) + Double(eps)).squareRoot()
                for i in 0..<perChannel {
                    weight[c * perChannel + i] = Float(Double(weight[c * perChannel + i]) * s)
                }
                bias[c] = Float((Double(oldBias[c]) - Double(mean[c])) * s + Double(beta[c]))
            }
            byName[layer + ".weight"] = (weightShape, weight)
            byName[layer + ".bias"] = ([norm.channels], bias)
            for field in ["weight", "bias", "running_mean", "running_var"] {
                byName[norm.name + "." + field] = nil
            }
        }
        return architecture.expectedTensors(foldedBatchNorms: folded).map { name, shape in
            (name, shape, byName[name]!.1)
        }
    }

    /// Builds a complete weight file in memory for `architecture`, with `folded` batch norms
    /// folded into the layers before them.
    static func file(
        _ architecture: IResNetArchitecture, folded: [String] = [], seed: UInt64 = 1,
        configure: (inout WeightFileMetadata) -> Void = { _ in },
        editTensors: (inout [(name: String, shape: [Int], values: [Float])]) -> Void = { _ in }
    ) throws -> SafeTensorsFile {
        var metadata = WeightFileMetadata(architecture: architecture)
        metadata.foldedBatchNorms = folded
        configure(&metadata)
        var tensors = fold(
            unfoldedTensors(architecture, seed: seed), architecture: architecture,
            folded: Set(folded), eps: metadata.batchNormEpsilon)
        editTensors(&tensors)
        var writer = SafeTensorsWriter()
        writer.metadata = metadata.dictionary
        for tensor in tensors {
            writer.add(name: tensor.name, shape: tensor.shape, values: tensor.values)
        }
        return try SafeTensorsFile(bytes: writer.serialized(), path: "synthetic.safetensors")
    }
}
