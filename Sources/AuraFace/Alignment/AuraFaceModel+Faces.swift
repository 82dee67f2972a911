/// A face embedded from a photo: the embedding and the crop it came from.
public struct PhotoFaceEmbedding: Sendable {
    /// The L2-normalized embedding. Compare two with a dot product.
    public var embedding: [Float]
    /// The L2 norm of the raw network output.
    public var rawNorm: Float
    /// The aligned crop the network read, with its transform and fit residual.
    public var face: AlignedFace
}

extension AuraFaceModel {
    /// Builds the network input for aligned face crops in any pixel layout: the NCHW
    /// `[N, 3, S, S]` tensor of `RGBImage.normalizedBatch(_:metadata:)`, so a crop gives the
    /// same tensor whether its bytes are RGB, BGR, RGBA, BGRA or padded rows.
    ///
    /// - Throws: `ImageInputError.sizeMismatch` for the first crop that is not S x S.
    public func normalizedInput(faces: [PixelBuffer]) throws(ImageInputError) -> [Float] {
        try RGBImage.normalizedBatch(faces.map { $0.rgbImage() }, metadata: metadata)
    }

    /// Embeds aligned face crops (S x S, S = `architecture.inputSize`) in one batch.
    ///
    /// - Returns: one L2-normalized embedding per crop, in input order.
    /// - Throws: `ImageInputError` when a crop is not S x S or the network does not take RGB,
    ///   `InferenceError` from the forward pass.
    public func embeddings(faces: [PixelBuffer]) throws -> [[Float]] {
        try rawEmbeddings(faces: faces).map { try Self.l2Normalized($0) }
    }

    /// Embeds aligned face crops given as `RGBImage`s; see `embeddings(faces:)`.
    public func embeddings(faces: [RGBImage]) throws -> [[Float]] {
        try embeddings(faces: faces.map(PixelBuffer.init))
    }

    /// Aligns the face that `landmarks` locate in `photo` onto the ArcFace template at the
    /// network's input size, as insightface's `norm_crop` does, and embeds the crop.
    ///
    /// - Parameter aligner: the aligner to use; nil for `FaceAligner(cropSize:)` at
    ///   `architecture.inputSize` with the default residual limit.
    /// - Throws: `AlignmentError` when the landmarks are rejected or the input size has no
    ///   template scaling, `ImageInputError` when the aligner's crop size is not the input size,
    ///   `InferenceError` from the forward pass.
    public func embed(
        photo: PixelBuffer, landmarks: FaceLandmarks, aligner: FaceAligner? = nil
    ) throws -> PhotoFaceEmbedding {
        let aligner = try aligner ?? FaceAligner(cropSize: architecture.inputSize)
        let face = try aligner.align(photo, landmarks: landmarks)
        let raw = try rawEmbeddings(faces: [PixelBuffer(face.image)])[0]
        let norm = raw.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return PhotoFaceEmbedding(
            embedding: try Self.l2Normalized(raw), rawNorm: Float(norm), face: face)
    }

    private func rawEmbeddings(faces: [PixelBuffer]) throws -> [[Float]] {
        guard !faces.isEmpty else {
            return []
        }
        let input = try normalizedInput(faces: faces)
        return try rawEmbeddings(normalizedInput: input, batchSize: faces.count)
    }
}
