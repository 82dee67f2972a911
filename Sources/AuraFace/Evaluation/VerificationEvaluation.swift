// Embeds a verification set with a model and runs the protocol, as InsightFace's
// verification.py `test` does: each image and its horizontal mirror go through the network,
// and the two raw embeddings are added before normalization.

/// The raw network outputs for a verification set's images and their mirrors.
public struct VerificationEmbeddings: Sendable, Equatable {
    /// Raw (not normalized) embeddings of the images, in file order.
    public var original: [[Float]]
    /// Raw embeddings of the horizontally mirrored images, in file order.
    public var mirrored: [[Float]]

    public init(original: [[Float]], mirrored: [[Float]]) {
        self.original = original
        self.mirrored = mirrored
    }
}

/// The outcome of evaluating a model on one verification set.
public struct VerificationReport: Sendable {
    public var pairCount: Int
    public var result: VerificationResult
    /// Mean L2 norm of all raw embeddings, originals and mirrors ("XNorm" in InsightFace).
    public var meanNorm: Double
}

extension VerificationSet {
    /// Decodes every image, checks its size, and runs the model on it and on its mirror.
    ///
    /// - Parameters:
    ///   - batchSize: images per forward pass; each pass also runs their mirrors.
    ///   - progress: called after each batch with the images done and the total.
    /// - Throws: the decoder's error or `VerificationSetError.imageSizeMismatch` for the first
    ///   bad image, or `InferenceError`.
    public func embeddings(
        model: AuraFaceModel, batchSize: Int,
        progress: ((_ completed: Int, _ total: Int) -> Void)? = nil
    ) throws -> VerificationEmbeddings {
        precondition(batchSize >= 1, "batch size must be at least 1")
        let size = model.architecture.inputSize
        let total = encodedImages.count
        var original: [[Float]] = []
        var mirrored: [[Float]] = []
        original.reserveCapacity(total)
        mirrored.reserveCapacity(total)

        var first = 0
        while first < total {
            let indices = first..<min(first + batchSize, total)
            var images: [RGBImage] = []
            for index in indices {
                images.append(try image(at: index, size: size))
            }
            let flipped = images.map { $0.horizontallyMirrored() }
            original += try rawEmbeddings(images, model: model)
            mirrored += try rawEmbeddings(flipped, model: model)
            first = indices.upperBound
            progress?(first, total)
        }
        return VerificationEmbeddings(original: original, mirrored: mirrored)
    }

    /// Runs the verification protocol on embeddings of this set's images.
    ///
    /// - Throws: `VerificationProtocolError`, or `VerificationSetError.invalidLayout` when
    ///   the embedding counts do not match the set.
    public func evaluate(
        _ embeddings: VerificationEmbeddings, foldCount: Int = VerificationProtocol.defaultFoldCount
    ) throws -> VerificationReport {
        guard embeddings.original.count == encodedImages.count,
            embeddings.mirrored.count == encodedImages.count
        else {
            throw VerificationSetError.invalidLayout(
                path: path,
                reason: "\(embeddings.original.count) and \(embeddings.mirrored.count) embeddings "
                    + "for \(encodedImages.count) images")
        }
        let distances = VerificationProtocol.pairDistances(
            original: embeddings.original, mirrored: embeddings.mirrored)
        let result = try VerificationProtocol.evaluate(
            distances: distances, isSame: isSame, foldCount: foldCount)
        let meanNorm = VerificationProtocol.meanNorm(of: embeddings.original + embeddings.mirrored)
        return VerificationReport(pairCount: pairCount, result: result, meanNorm: meanNorm)
    }

    private func rawEmbeddings(_ images: [RGBImage], model: AuraFaceModel) throws -> [[Float]] {
        let input = try RGBImage.normalizedBatch(images, metadata: model.metadata)
        return try model.rawEmbeddings(normalizedInput: input, batchSize: images.count)
    }
}
