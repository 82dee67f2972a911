// The whole IResNet: forward pass against a forward pass built only from the reference
// loops, loading checks and their messages, batching, concurrency and the layer summary.

import Dispatch
import Foundation
import Synchronization
import Testing

@testable import AuraFace

/// Computes the IResNet forward pass with `Reference` loops only, reading every tensor
/// straight from the file. This is the oracle for `AuraFaceModel`.
private func referenceForward(_ file: SafeTensorsFile, input: [Float], batch: Int) throws -> [Float] {
    let metadata = try WeightFileMetadata(dictionary: file.metadata, path: file.path)
    let architecture = metadata.architecture
    let folded = Set(metadata.foldedBatchNorms)
    let eps = metadata.batchNormEpsilon
    func tensor(_ name: String) -> [Float] {
        file.floats(for: file.entry(named: name)!)
    }

    struct Activation {
        var values: [Float]
        var channels: Int
        var size: Int
    }
    func conv(_ x: Activation, _ name: String, outChannels: Int, kernelSize: Int, stride: Int) -> Activation {
        let padding = kernelSize / 2
        let values = Reference.conv2D(
            input: x.values, batch: batch, inChannels: x.channels, height: x.size, width: x.size,
            weight: tensor(name + ".weight"), bias: file.entry(named: name + ".bias").map(file.floats),
            outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding)
        return Activation(
            values: values, channels: outChannels, size: (x.size + 2 * padding - kernelSize) / stride + 1)
    }
    func batchNorm(_ x: Activation, _ name: String) -> Activation {
        if folded.contains(name) {
            return x
        }
        var y = x
        y.values = Reference.batchNorm(
            input: x.values, channels: x.channels, planeSize: x.size * x.size,
            weight: tensor(name + ".weight"), bias: tensor(name + ".bias"),
            runningMean: tensor(name + ".running_mean"), runningVariance: tensor(name + ".running_var"),
            eps: eps)
        return y
    }
    func prelu(_ x: Activation, _ name: String) -> Activation {
        var y = x
        y.values = Reference.prelu(
            input: x.values, channels: x.channels, planeSize: x.size * x.size, slope: tensor(name + ".weight"))
        return y
    }

    var x = Activation(values: input, channels: architecture.inputChannels, size: architecture.inputSize)
    x = conv(x, "conv1", outChannels: architecture.stemWidth, kernelSize: 3, stride: 1)
    x = batchNorm(x, "bn1")
    x = prelu(x, "prelu")
    for stage in 0..<4 {
        let width = architecture.stageWidths[stage]
        for block in 0..<architecture.stageDepths[stage] {
            let name = IResNetArchitecture.blockName(stage: stage, block: block)
            let stride = block == 0 ? 2 : 1
            var out = batchNorm(x, name + ".bn1")
            out = conv(out, name + ".conv1", outChannels: width, kernelSize: 3, stride: 1)
            out = batchNorm(out, name + ".bn2")
            out = prelu(out, name + ".prelu")
            out = conv(out, name + ".conv2", outChannels: width, kernelSize: 3, stride: stride)
            out = batchNorm(out, name + ".bn3")
            var identity = x
            if block == 0 {
                identity = conv(x, name + ".downsample.0", outChannels: width, kernelSize: 1, stride: stride)
                identity = batchNorm(identity, name + ".downsample.1")
            }
            out.values = zip(out.values, identity.values).map(+)
            x = out
        }
    }
    x = batchNorm(x, "bn2")
    let flattened = x.channels * x.size * x.size
    var embedding = Activation(
        values: Reference.fullyConnected(
            input: x.values, batch: batch, inFeatures: flattened, weight: tensor("fc.weight"),
            bias: tensor("fc.bias"), outFeatures: architecture.embeddingSize),
        channels: architecture.embeddingSize, size: 1)
    embedding = batchNorm(embedding, "features")
    return embedding.values
}

@Suite struct ModelTests {
    let architecture = SyntheticWeights.tinyArchitecture
    var imageSize: Int { architecture.inputChannels * architecture.inputSize * architecture.inputSize }

    /// The batch norms the ONNX export of arcface_torch folds: all that follow a convolution.
    var exportFolded: [String] {
        SyntheticWeights.foldableBatchNorms(architecture).filter { $0 != "features" }
    }

    func input(batch: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return random.floats(batch * imageSize)
    }

    enum Folding: String, CaseIterable, CustomTestStringConvertible {
        case none, asONNXExport, all
        var testDescription: String { rawValue }
    }

    func foldedNames(_ folding: Folding) -> [String] {
        switch folding {
        case .none: []
        case .asONNXExport: exportFolded
        case .all: SyntheticWeights.foldableBatchNorms(architecture)
        }
    }

    @Test(arguments: Folding.allCases)
    func forwardMatchesReferenceLoops(_ folding: Folding) throws {
        let file = try SyntheticWeights.file(architecture, folded: foldedNames(folding))
        let model = try AuraFaceModel(safeTensors: file)
        let batch = 3
        let x = input(batch: batch, seed: 31)
        let rows = try model.rawEmbeddings(normalizedInput: x, batchSize: batch)
        #expect(rows.count == batch)
        #expect(rows.allSatisfy { $0.count == architecture.embeddingSize })
        let expected = try referenceForward(file, input: x, batch: batch)
        expectClose(rows.flatMap { $0 }, expected, tolerance: 1e-4)
    }

    @Test func foldedAndUnfoldedWeightsAgree() throws {
        // Folding changes the arithmetic, not the function: both files come from the same
        // unfolded weights.
        let unfolded = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 5))
        let folded = try AuraFaceModel(
            safeTensors: SyntheticWeights.file(architecture, folded: exportFolded, seed: 5))
        let x = input(batch: 2, seed: 32)
        let a = try unfolded.rawEmbeddings(normalizedInput: x, batchSize: 2)
        let b = try folded.rawEmbeddings(normalizedInput: x, batchSize: 2)
        expectClose(b.flatMap { $0 }, a.flatMap { $0 }, tolerance: 1e-4)
    }

    @Test func loadsFromFileURL() throws {
        let file = try SyntheticWeights.file(architecture, folded: exportFolded)
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("auraface-model-test-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeFileAtomically(file.bytes, to: url)

        let fromDisk = try AuraFaceModel(contentsOf: url)
        let inMemory = try AuraFaceModel(safeTensors: file)
        #expect(fromDisk.architecture == architecture)
        #expect(fromDisk.metadata.foldedBatchNorms == exportFolded)
        let x = input(batch: 1, seed: 33)
        #expect(
            try fromDisk.rawEmbeddings(normalizedInput: x, batchSize: 1)
                == inMemory.rawEmbeddings(normalizedInput: x, batchSize: 1))
    }

    @Test func missingFileReportsUnreadable() {
        let path = "/nonexistent/auraface.safetensors"
        #expect {
            try AuraFaceModel(contentsOf: URL(fileURLWithPath: path))
        } throws: { error in
            guard case let .unreadable(errorPath, _) = error as? WeightFileError else { return false }
            return errorPath == path
        }
    }

    @Test func graphInputAppliesInGraphNormalization() throws {
        let file = try SyntheticWeights.file(architecture) { $0.inputNormalizationInGraph = true }
        let model = try AuraFaceModel(safeTensors: file)
        var random = SeededRandom(seed: 34)
        let pixels = (0..<(2 * imageSize)).map { _ in random.uniform(0...255).rounded() }
        let normalized = pixels.map { ($0 - 127.5) * (1 / 127.5) }
        let fromPixels = try model.rawEmbeddings(graphInput: pixels, batchSize: 2)
        let fromNormalized = try model.rawEmbeddings(normalizedInput: normalized, batchSize: 2)
        expectClose(fromPixels.flatMap { $0 }, fromNormalized.flatMap { $0 }, tolerance: 1e-6)
    }

    @Test func graphInputIsNormalizedInputWithoutInGraphNormalization() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture))
        #expect(model.metadata.inputNormalizationInGraph == false)
        let x = input(batch: 1, seed: 35)
        #expect(
            try model.rawEmbeddings(graphInput: x, batchSize: 1)
                == model.rawEmbeddings(normalizedInput: x, batchSize: 1))
    }

    @Test func repeatedImageInBatchGivesEqualRows() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, folded: exportFolded))
        let a = input(batch: 1, seed: 41)
        let b = input(batch: 1, seed: 42)
        let c = input(batch: 1, seed: 43)
        let rows = try model.rawEmbeddings(normalizedInput: a + b + a + c, batchSize: 4)
        #expect(rows[0] == rows[2])
        #expect(rows[0] != rows[1])
        // Each row matches the image run alone (the GEMM shapes differ, so not bit for bit).
        for (row, image) in [(0, a), (1, b), (3, c)] {
            let single = try model.rawEmbeddings(normalizedInput: image, batchSize: 1)[0]
            expectClose(rows[row], single, tolerance: 1e-5, "row \(row)")
        }
    }

    @Test func concurrentCallsMatchSerialResults() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, folded: exportFolded))
        let inputs = (0..<8).map { input(batch: 2, seed: 50 + UInt64($0)) }
        let serial = try inputs.map { try model.rawEmbeddings(normalizedInput: $0, batchSize: 2) }

        // Eight OS threads rather than tasks: the cooperative pool has only as many threads as
        // cores, and the point is to have eight calls inside the model at once.
        let results = Mutex<[Int: Result<[[Float]], InferenceError>]>([:])
        let group = DispatchGroup()
        for (index, x) in inputs.enumerated() {
            group.enter()
            Thread {
                let result = Result { () throws(InferenceError) in
                    try model.rawEmbeddings(normalizedInput: x, batchSize: 2)
                }
                results.withLock { $0[index] = result }
                group.leave()
            }.start()
        }
        group.wait()

        let concurrent = results.withLock { $0 }
        #expect(concurrent.count == 8)
        for index in 0..<8 {
            #expect(try concurrent[index]?.get() == serial[index], "thread \(index)")
        }
    }

    @Test func rejectsInvalidBatchSize() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture))
        #expect(throws: InferenceError.invalidBatchSize(0)) {
            try model.rawEmbeddings(normalizedInput: [], batchSize: 0)
        }
        #expect(InferenceError.invalidBatchSize(0).description == "invalid batch size 0, expected 1 or more")
    }

    @Test func rejectsWrongInputLength() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture))
        let expectedError = InferenceError.inputSizeMismatch(
            expected: 2 * imageSize, found: 10, batchSize: 2, imageShape: [3, 32, 32])
        #expect(throws: expectedError) {
            try model.rawEmbeddings(graphInput: [Float](repeating: 0, count: 10), batchSize: 2)
        }
        #expect(
            expectedError.description
                == "input has 10 values, expected 6144 (batch size 2 x [3, 32, 32], NCHW float32)")
    }

    @Test func rejectsNonFiniteInput() throws {
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture))
        var x = input(batch: 1, seed: 36)
        x[5] = .nan
        x[700] = -.infinity
        let expectedError = InferenceError.nonFiniteInput(count: 2, firstIndex: 5)
        #expect(throws: expectedError) { try model.rawEmbeddings(normalizedInput: x, batchSize: 1) }
        #expect(throws: expectedError) { try model.rawEmbeddings(graphInput: x, batchSize: 1) }
        #expect(expectedError.description == "input holds 2 NaN or infinite values, the first at index 5")
    }

    @Test func reportsOverflowInsideTheNetwork() throws {
        // Every weight is finite, but fc's bias near Float.greatestFiniteMagnitude times a
        // large features scale overflows float32: the result must be an error, not NaN or inf.
        let file = try SyntheticWeights.file(architecture, editTensors: { tensors in
            let bias = tensors.firstIndex { $0.name == "fc.bias" }!
            tensors[bias].values = tensors[bias].values.map { _ in 3e38 }
            let scale = tensors.firstIndex { $0.name == "features.weight" }!
            tensors[scale].values = tensors[scale].values.map { _ in 1e10 }
        })
        let model = try AuraFaceModel(safeTensors: file)
        let expectedError = InferenceError.nonFiniteOutput(image: 0, count: architecture.embeddingSize)
        #expect(throws: expectedError) {
            try model.rawEmbeddings(normalizedInput: input(batch: 2, seed: 37), batchSize: 2)
        }
        #expect(expectedError.description.hasPrefix("the embedding of image 0 holds"))
    }

    // MARK: Loading checks

    func loadError(_ file: SafeTensorsFile) throws -> WeightFileError? {
        do {
            _ = try AuraFaceModel(safeTensors: file)
            return nil
        } catch let error as WeightFileError {
            return error
        }
    }

    func loadError(
        editTensors: (inout [(name: String, shape: [Int], values: [Float])]) -> Void
    ) throws -> WeightFileError? {
        try loadError(SyntheticWeights.file(architecture, editTensors: editTensors))
    }

    @Test func rejectsMissingTensor() throws {
        let error = try loadError { tensors in
            tensors.removeAll { $0.name == "layer2.1.conv2.weight" }
        }
        #expect(error == .missingTensor(path: "synthetic.safetensors", tensor: "layer2.1.conv2.weight"))
        #expect(
            error?.description
                == "'synthetic.safetensors': tensor 'layer2.1.conv2.weight' is missing, "
                + "but the architecture in the metadata needs it")
    }

    @Test func rejectsUnfoldedTensorsWhenMetadataSaysFolded() throws {
        // The metadata claims conv1's batch norm was folded, but the tensors are unfolded:
        // conv1 then lacks the bias that folding creates.
        let file = try SyntheticWeights.file(architecture) { $0.foldedBatchNorms = ["bn1"] }
        #expect(try loadError(file) == .missingTensor(path: "synthetic.safetensors", tensor: "conv1.bias"))
    }

    @Test func rejectsUnexpectedTensor() throws {
        let error = try loadError { tensors in
            tensors.append((name: "layer9.0.conv1.weight", shape: [2], values: [1, 2]))
        }
        #expect(error == .unexpectedTensor(path: "synthetic.safetensors", tensor: "layer9.0.conv1.weight"))
        #expect(
            error?.description
                == "'synthetic.safetensors': tensor 'layer9.0.conv1.weight' is not part of the "
                + "architecture in the metadata")
    }

    @Test func rejectsWrongShape() throws {
        let error = try loadError { tensors in
            let index = tensors.firstIndex { $0.name == "layer1.0.prelu.weight" }!
            tensors[index].shape = [1, 4]
        }
        #expect(
            error == .shapeMismatch(
                path: "synthetic.safetensors", tensor: "layer1.0.prelu.weight", expected: [4], found: [1, 4]))
        #expect(
            error?.description
                == "'synthetic.safetensors': tensor 'layer1.0.prelu.weight' has shape [1, 4], expected [4]")
    }

    @Test func rejectsNonFiniteWeights() throws {
        let error = try loadError { tensors in
            let index = tensors.firstIndex { $0.name == "fc.weight" }!
            tensors[index].values[3] = .nan
            tensors[index].values[9] = .infinity
        }
        #expect(error == .nonFiniteValues(path: "synthetic.safetensors", tensor: "fc.weight", count: 2))
        #expect(error?.description == "'synthetic.safetensors': tensor 'fc.weight' holds 2 NaN or infinite values")
    }

    @Test func rejectsNegativeVariance() throws {
        let error = try loadError { tensors in
            let index = tensors.firstIndex { $0.name == "layer3.0.bn1.running_var" }!
            tensors[index].values[2] = -0.5
        }
        #expect(
            error == .invalidValues(
                path: "synthetic.safetensors", tensor: "layer3.0.bn1.running_var",
                reason: "variance -0.5 at index 2 is negative"))
    }

    // MARK: Layer summary

    @Test func layerSummaryOfR100MatchesPublishedTotals() {
        let rows = AuraFaceModel.layerSummary(for: .r100, foldedBatchNorms: [])
        let parameters = rows.reduce(0) { $0 + $1.parameters }
        let flops = rows.reduce(0) { $0 + $1.flops }
        // arcface_torch lists IResNet-100 at about 65.2M parameters and 24.2 GFLOPs.
        #expect(abs(Double(parameters) - 65.2e6) < 0.1e6, "parameters \(parameters)")
        #expect(abs(Double(flops) - 24.2e9) < 0.1e9, "FLOPs \(flops)")
        #expect(rows.last?.outputShape == [512])
        #expect(rows.first { $0.name == "layer4.2" }?.outputShape == [512, 7, 7])
    }

    @Test func layerSummaryCountsPyTorchParameters() {
        // PyTorch's parameters are the unfolded file's tensors minus the running statistics.
        let fromTensors = architecture.expectedTensors(foldedBatchNorms: [])
            .filter { !$0.name.hasSuffix(".running_mean") && !$0.name.hasSuffix(".running_var") }
            .reduce(0) { $0 + $1.shape.reduce(1, *) }
        let unfolded = AuraFaceModel.layerSummary(for: architecture, foldedBatchNorms: [])
        let folded = AuraFaceModel.layerSummary(
            for: architecture, foldedBatchNorms: Set(SyntheticWeights.foldableBatchNorms(architecture)))
        #expect(unfolded.reduce(0) { $0 + $1.parameters } == fromTensors)
        #expect(folded.map(\.parameters) == unfolded.map(\.parameters))
        #expect(folded.first { $0.name == "layer1.0.bn2" }?.foldedInto == "layer1.0.conv1")
        #expect(unfolded.first { $0.name == "layer1.0.bn2" }?.foldedInto == nil)
    }

    @Test func layerSummaryCountsConvolutionFLOPs() {
        let rows = AuraFaceModel.layerSummary(for: architecture, foldedBatchNorms: [])
        let conv2 = rows.first { $0.name == "layer1.0.conv2" }
        // 3x3 stride 2 from [4, 32, 32] to [4, 16, 16]: 2 * 4 * 4 * 9 * 16 * 16.
        #expect(conv2?.outputShape == [4, 16, 16])
        #expect(conv2?.flops == 2 * 4 * 4 * 9 * 16 * 16)
        #expect(rows.first { $0.name == "fc" }?.flops == 2 * 8 * 16 * 2 * 2)
    }
}
