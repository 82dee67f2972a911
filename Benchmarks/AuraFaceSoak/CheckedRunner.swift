// The soak's inputs and its per-batch checks: deterministic synthetic images, and a runner
// that ends every batch with a fixed probe image and checks every row it gets back.

import AuraFace

/// Deterministic synthetic input images: pixel values 0...255 drawn with SplitMix64, then
/// normalized with the model's metadata as (v - inputMean) * inputScale.
struct SyntheticImages {
    let imageSize: Int
    let mean: Float
    let scale: Float
    let seed: UInt64

    /// Appends the image numbered `index` to `values`. Equal seeds and indices give equal
    /// images.
    func append(index: UInt64, to values: inout [Float]) {
        var state = seed ^ (index &* 0xD1B5_4A32_D192_ED03)
        for _ in 0..<imageSize {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let pixel = Float(z >> 56)
            values.append((pixel - mean) * scale)
        }
    }
}

/// Runs batches whose last image is always the probe and checks each result.
///
/// A deterministic engine gives the probe the same bits in every batch of the same size. The
/// engine also computes every layer image by image, so by default the probe must have the
/// same bits whatever the batch size. `allowBatchVariation` relaxes that across batch sizes
/// to a cosine of at least `minimumCrossBatchCosine`.
struct CheckedRunner {
    let model: AuraFaceModel
    let images: SyntheticImages
    let allowBatchVariation: Bool
    /// Index of the probe image in `images`' numbering, outside the range of the others.
    static let probeIndex = UInt64.max
    static let minimumCrossBatchCosine = 0.99999
    /// The probe's raw embedding from the first batch of each size.
    private(set) var probeReferences: [Int: [Float]] = [:]
    private(set) var probeChecks = 0
    private(set) var nextImageIndex: UInt64 = 0

    init(model: AuraFaceModel, images: SyntheticImages, allowBatchVariation: Bool) {
        self.model = model
        self.images = images
        self.allowBatchVariation = allowBatchVariation
    }

    /// Embeds `batchSize - 1` new synthetic images followed by the probe and checks the rows.
    /// `done` (embeddings before this batch) only labels failure messages.
    mutating func runBatch(size batchSize: Int, done: Int) throws -> [[Float]] {
        var input: [Float] = []
        input.reserveCapacity(batchSize * images.imageSize)
        for _ in 0..<(batchSize - 1) {
            images.append(index: nextImageIndex, to: &input)
            nextImageIndex += 1
        }
        images.append(index: Self.probeIndex, to: &input)

        let rows = try model.rawEmbeddings(normalizedInput: input, batchSize: batchSize)
        let context = "batch of \(batchSize) after \(done) embeddings"
        guard rows.count == batchSize else {
            throw SoakFailure(description: "\(context): \(rows.count) embeddings returned, expected \(batchSize)")
        }
        let embeddingSize = model.architecture.embeddingSize
        for (row, values) in rows.enumerated() {
            guard values.count == embeddingSize else {
                throw SoakFailure(
                    description: "\(context): row \(row) has \(values.count) values, expected \(embeddingSize)")
            }
            if let index = values.firstIndex(where: { !$0.isFinite }) {
                throw SoakFailure(
                    description: "\(context): row \(row) value \(index) is \(values[index]), expected a finite number")
            }
        }
        try checkProbe(rows[batchSize - 1], batchSize: batchSize, context: context)
        return rows
    }

    private mutating func checkProbe(_ probe: [Float], batchSize: Int, context: String) throws {
        probeChecks += 1
        if let reference = probeReferences[batchSize] {
            try expectSameBits(probe, reference, context: "\(context): the probe embedding differs from its "
                + "result in the first batch of \(batchSize)", hint: "")
            return
        }
        if let single = probeReferences[1] {
            if allowBatchVariation {
                let cosine = Self.cosine(probe, single)
                guard cosine >= Self.minimumCrossBatchCosine else {
                    throw SoakFailure(
                        description: "\(context): the probe embedding has cosine \(cosine) to its result at "
                            + "batch size 1, expected at least \(Self.minimumCrossBatchCosine)")
                }
            } else {
                try expectSameBits(probe, single, context: "\(context): the probe embedding differs from its "
                    + "result at batch size 1",
                    hint: " (if the engine may now sum in another order for other batch sizes, "
                        + "run with --allow-batch-variation)")
            }
        }
        probeReferences[batchSize] = probe
    }

    private func expectSameBits(_ values: [Float], _ reference: [Float], context: String, hint: String) throws {
        let differing = zip(values, reference).filter { $0.bitPattern != $1.bitPattern }
        guard differing.isEmpty else {
            let maxDifference = differing.map { abs($0 - $1) }.max() ?? 0
            throw SoakFailure(
                description: "\(context) in \(differing.count) of \(values.count) values "
                    + "(max |difference| \(maxDifference)), expected identical bits\(hint)")
        }
    }

    private static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0
        var normA = 0.0
        var normB = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            normA += Double(x) * Double(x)
            normB += Double(y) * Double(y)
        }
        return dot / (normA.squareRoot() * normB.squareRoot())
    }
}
