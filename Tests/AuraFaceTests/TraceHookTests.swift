// The per-layer observer of AuraFaceModel: names, order and shapes of the reported layers,
// their values against the final output and against each other, and no effect on the result.

import Foundation
import Testing

@testable import AuraFace

/// One observer call.
private struct ObservedLayer {
    var name: String
    var shape: [Int]
    var values: [Float]
}

private func traceLayers(
    _ model: AuraFaceModel, input: [Float], batch: Int
) throws -> (layers: [ObservedLayer], embeddings: [[Float]]) {
    var layers: [ObservedLayer] = []
    let embeddings = try model.rawEmbeddings(graphInput: input, batchSize: batch) { name, shape, values in
        layers.append(ObservedLayer(name: name, shape: shape, values: values))
    }
    return (layers, embeddings)
}

/// The layers the trace should report, written out from arcface_torch's module order: a
/// convolution or fc appears only when the batch norm after it is not folded.
private func expectedLayers(
    _ architecture: IResNetArchitecture, folded: Set<String>, batch: Int
) -> [(name: String, shape: [Int])] {
    var layers: [(String, [Int])] = []
    var size = architecture.inputSize
    let stem = [batch, architecture.stemWidth, size, size]
    if !folded.contains("bn1") {
        layers.append(("conv1", stem))
    }
    layers += [("bn1", stem), ("prelu", stem)]
    var channels = architecture.stemWidth
    for stage in 0..<4 {
        let width = architecture.stageWidths[stage]
        for block in 0..<architecture.stageDepths[stage] {
            let prefix = "layer\(stage + 1).\(block)"
            let inShape = [batch, channels, size, size]
            let wide = [batch, width, size, size]
            if block == 0 {
                size /= 2
            }
            let out = [batch, width, size, size]
            layers.append(("\(prefix).bn1", inShape))
            if !folded.contains("\(prefix).bn2") {
                layers.append(("\(prefix).conv1", wide))
            }
            layers += [("\(prefix).bn2", wide), ("\(prefix).prelu", wide)]
            if !folded.contains("\(prefix).bn3") {
                layers.append(("\(prefix).conv2", out))
            }
            layers.append(("\(prefix).bn3", out))
            if block == 0 {
                if !folded.contains("\(prefix).downsample.1") {
                    layers.append(("\(prefix).downsample.0", out))
                }
                layers.append(("\(prefix).downsample", out))
            }
            layers.append((prefix, out))
            channels = width
        }
    }
    layers.append(("bn2", [batch, channels, size, size]))
    if !folded.contains("features") {
        layers.append(("fc", [batch, architecture.embeddingSize]))
    }
    layers.append(("features", [batch, architecture.embeddingSize]))
    return layers
}

@Suite struct TraceHookTests {
    let architecture = SyntheticWeights.tinyArchitecture
    let batch = 2

    private func input(seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return random.floats(batch * 3 * architecture.inputSize * architecture.inputSize)
    }

    @Test func unfoldedReportsEveryLayerInOrder() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 3))
        let (layers, _) = try traceLayers(model, input: input(seed: 4), batch: batch)
        let expected = expectedLayers(architecture, folded: [], batch: batch)

        #expect(layers.map(\.name) == expected.map(\.name))
        for (layer, entry) in zip(layers, expected) {
            #expect(layer.shape == entry.shape, "\(layer.name)")
            #expect(layer.values.count == entry.shape.reduce(1, *), "\(layer.name)")
        }
    }

    @Test func foldedReportsUnderBatchNormNames() throws {
        let folded = SyntheticWeights.foldableBatchNorms(architecture)
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, folded: folded, seed: 3))
        let (layers, _) = try traceLayers(model, input: input(seed: 4), batch: batch)
        let expected = expectedLayers(architecture, folded: Set(folded), batch: batch)

        #expect(layers.map(\.name) == expected.map(\.name))
        #expect(layers.map(\.shape) == expected.map(\.shape))
        #expect(!layers.contains { $0.name == "conv1" || $0.name == "fc" || $0.name.hasSuffix(".conv2") })
    }

    @Test func foldedAndUnfoldedLayersAgree() throws {
        // Folding changes which layers are reported, not the values of the shared names.
        let folded = SyntheticWeights.foldableBatchNorms(architecture)
        let plain = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 5))
        let fused = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, folded: folded, seed: 5))
        let x = input(seed: 6)
        let plainLayers = Dictionary(uniqueKeysWithValues: try traceLayers(plain, input: x, batch: batch).layers.map { ($0.name, $0.values) })
        let fusedLayers = try traceLayers(fused, input: x, batch: batch).layers

        for layer in fusedLayers {
            let reference = try #require(plainLayers[layer.name], "\(layer.name) missing from the unfolded trace")
            expectClose(layer.values, reference, tolerance: 1e-4, "\(layer.name)")
        }
    }

    @Test func lastLayerEqualsRawOutput() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 7))
        let x = input(seed: 8)
        let (layers, traced) = try traceLayers(model, input: x, batch: batch)
        let untraced = try model.rawEmbeddings(graphInput: x, batchSize: batch)

        let last = try #require(layers.last)
        #expect(last.name == "features")
        #expect(last.values == untraced.flatMap { $0 })
        #expect(traced == untraced)
    }

    @Test func blockOutputIsResidualSum() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 9))
        let (layers, _) = try traceLayers(model, input: input(seed: 10), batch: batch)
        let byName = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0.values) })

        // layer1.0 has a downsample shortcut; layer2.1 adds its input, layer2.0's output.
        let downsampled = zip(try #require(byName["layer1.0.bn3"]), try #require(byName["layer1.0.downsample"])).map(+)
        #expect(try #require(byName["layer1.0"]) == downsampled)
        let identity = zip(try #require(byName["layer2.1.bn3"]), try #require(byName["layer2.0"])).map(+)
        #expect(try #require(byName["layer2.1"]) == identity)
    }

    @Test func invalidInputCallsNoObserver() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 11))
        var calls = 0
        #expect(throws: InferenceError.self) {
            _ = try model.rawEmbeddings(graphInput: [1, 2, 3], batchSize: 1) { _, _, _ in calls += 1 }
        }
        #expect(calls == 0)
    }
}
