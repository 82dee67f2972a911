import Foundation

/// An IResNet face embedder loaded from a converted safetensors weight file.
///
/// The model's weights are immutable after loading, so one instance may serve several threads
/// at once: each call runs with activation buffers of its own. Between calls the model keeps
/// up to 64 MiB of the last calls' buffers (`cachedBufferBytes`), so a batch-1 call that
/// follows another reuses them instead of faulting in new pages. `releaseCachedBuffers()`
/// frees them.
///
/// Each model has its own thread budget, `threadCount`. One forward pass runs on at most that
/// many threads at once and splits independent work over them: whole images when the batch
/// has enough, otherwise whole Winograd GEMMs, blocks of the other GEMMs and channel ranges of
/// the transforms. OpenBLAS runs single-threaded inside each piece, so loading a second model
/// adds no threads. No piece's result depends on where a split falls, so an embedding is the
/// same bits with any `threadCount`, alone or within any batch.
///
/// ```swift
/// let model = try AuraFaceModel(contentsOf: URL(fileURLWithPath: "auraface.safetensors"))
/// let raw = try model.rawEmbeddings(graphInput: pixels, batchSize: 2)
/// let a = try AuraFaceModel.l2Normalized(raw[0])
/// ```
public final class AuraFaceModel: Sendable {
    /// The weight file's description of the network and its input.
    public let metadata: WeightFileMetadata
    /// The maximum number of threads one forward pass of this model runs on at once.
    public let threadCount: Int
    private let network: IResNet
    /// Activation buffers kept between calls: one pool per pass that can run at once, which is
    /// `threadCount` image groups and one remainder batch.
    private let bufferCache: BufferCache

    /// The network's depths, widths, embedding size and input size.
    public var architecture: IResNetArchitecture { metadata.architecture }

    /// Loads OpenBLAS (if not loaded yet), then reads, checks and loads a weight file.
    ///
    /// Every tensor the architecture in the file's metadata needs must be present with its
    /// exact shape, no other tensor may be present, and every value must be finite.
    ///
    /// The header is read and checked against the file's size first. Then the tensors are read
    /// one at a time as their layers are built, so the file is never held in memory as a whole.
    /// The file is closed before this returns, and the model does not depend on it.
    ///
    /// - Parameters:
    ///   - url: a safetensors file written by this library's converter.
    ///   - threads: this model's `threadCount`. nil means `defaultThreadCount`, the CPUs this
    ///     process may use.
    ///   - convolution: how to compute the 3x3 stride-1 convolutions. `.winograd` (the default)
    ///     needs about 4/9 of their multiply-adds, and `.plain` computes them as im2col and GEMM, for
    ///     auditing.
    /// - Throws: `BLASError` when OpenBLAS cannot be loaded or `threads` is below 1
    ///   (`.invalidThreadCount`);
    ///   `WeightFileError` when the file cannot be read, is not valid safetensors, has bad
    ///   metadata, or its tensors do not match the architecture.
    public convenience init(
        contentsOf url: URL, threads: Int? = nil, convolution: ConvolutionAlgorithm = .winograd
    ) throws {
        let threadCount = try Self.prepareBLAS(threads: threads)
        let (metadata, network) = try SafeTensorsFileReader.withOpened(path: url.path) {
            file throws(WeightFileError) in
            try Self.load(file, threadCount: threadCount, convolution: convolution)
        }
        self.init(metadata: metadata, network: network, threadCount: threadCount)
    }

    /// Loads a weight file already parsed in memory, with the same options, checks and errors
    /// as `init(contentsOf:threads:convolution:)`.
    public convenience init(
        safeTensors file: SafeTensorsFile, threads: Int? = nil, convolution: ConvolutionAlgorithm = .winograd
    ) throws {
        let threadCount = try Self.prepareBLAS(threads: threads)
        let (metadata, network) = try Self.load(file, threadCount: threadCount, convolution: convolution)
        self.init(metadata: metadata, network: network, threadCount: threadCount)
    }

    /// Checks the metadata and tensors of `file` and builds the network.
    private static func load(
        _ file: any TensorSource, threadCount: Int, convolution: ConvolutionAlgorithm
    ) throws(WeightFileError) -> (WeightFileMetadata, IResNet) {
        let metadata = try WeightFileMetadata(dictionary: file.header.metadata, path: file.path)
        let network = try IResNet(file: file, metadata: metadata, convolution: convolution, workers: threadCount)
        return (metadata, network)
    }

    private init(metadata: WeightFileMetadata, network: IResNet, threadCount: Int) {
        self.metadata = metadata
        self.network = network
        self.threadCount = threadCount
        bufferCache = BufferCache(maxPools: threadCount + 1)
    }

    private init(sharing model: AuraFaceModel, threadCount: Int) {
        metadata = model.metadata
        network = model.network
        self.threadCount = threadCount
        bufferCache = BufferCache(maxPools: threadCount + 1)
    }

    /// The bytes of activation buffers the model keeps between calls: the working set of the
    /// last calls, at most `threadCount + 1` passes' worth and at most 64 MiB.
    public var cachedBufferBytes: Int {
        bufferCache.floatCount * MemoryLayout<Float>.stride
    }

    /// Frees the activation buffers kept between calls. The next call allocates them again,
    /// and its pages are faulted in anew.
    public func releaseCachedBuffers() {
        bufferCache.removeAll()
    }

    /// Returns a model with another `threadCount` that shares this one's weights (no copy).
    ///
    /// - Throws: `BLASError.invalidThreadCount` when `threads` is below 1.
    public func withThreadCount(_ threads: Int) throws(BLASError) -> AuraFaceModel {
        guard threads >= 1 else {
            throw .invalidThreadCount(threads)
        }
        return AuraFaceModel(sharing: self, threadCount: threads)
    }

    /// The `threadCount` of a model loaded without `threads`: the CPUs in this process's
    /// scheduler affinity mask, lowered to its cgroup CPU quota (rounded up) when one is set.
    public static var defaultThreadCount: Int {
        HostCPU.availableCPUCount()
    }

    /// Loads OpenBLAS and returns the model's thread count.
    private static func prepareBLAS(threads: Int?) throws(BLASError) -> Int {
        try OpenBLAS.load()
        guard let threads else {
            return defaultThreadCount
        }
        guard threads >= 1 else {
            throw .invalidThreadCount(threads)
        }
        return threads
    }

    /// Runs the network on a batch laid out exactly as the source ONNX graph's input.
    ///
    /// The input is [N, C, H, W] float32, N = `batchSize`, C, H and W from `architecture`,
    /// channels in `metadata.channelOrder`. When `metadata.inputNormalizationInGraph` is true
    /// the graph took raw 0-255 pixels and normalized them itself, so this applies
    /// (v - inputMean) * inputScale first. Otherwise the graph input was already normalized
    /// and this equals `rawEmbeddings(normalizedInput:batchSize:)`.
    ///
    /// - Returns: one raw (not L2-normalized) embedding of `architecture.embeddingSize`
    ///   values per image, in input order.
    /// - Throws: `InferenceError` when the batch size is below 1, the input length is not
    ///   N * C * H * W, or the input contains NaN or infinite values (checked before the
    ///   network runs); `.nonFiniteOutput` when an intermediate value overflowed float32.
    public func rawEmbeddings(graphInput: [Float], batchSize: Int) throws(InferenceError) -> [[Float]] {
        try embed(graphInput: graphInput, batchSize: batchSize, tap: nil)
    }

    /// Runs the network as `rawEmbeddings(graphInput:batchSize:)` does and calls `observer`
    /// after each layer with its output, in forward order.
    ///
    /// Layers are named by their PyTorch module paths in arcface_torch's IResNet. The stem
    /// reports `conv1`, `bn1` and `prelu`. Each block reports `layerS.B.bn1`, `.conv1`, `.bn2`,
    /// `.prelu`, `.conv2` and `.bn3`, a stage's first block also `.downsample.0` and
    /// `.downsample`, and then the block sum `layerS.B`. The head reports `bn2`, `fc` and
    /// `features`. A convolution or fc whose batch norm was
    /// folded into its bias (see `metadata.foldedBatchNorms`) is not reported on its own:
    /// its output equals the batch norm's output and is reported under the batch norm's name,
    /// as the ONNX export computes it. Shapes are [N, C, H, W] up to `bn2` and [N, D] after.
    /// The last call is the raw embeddings, all images concatenated.
    ///
    /// - Throws: `InferenceError` as `rawEmbeddings(graphInput:batchSize:)` does, before any
    ///   call to `observer`.
    public func rawEmbeddings(
        graphInput: [Float], batchSize: Int, observer: LayerObserver
    ) throws(InferenceError) -> [[Float]] {
        // The tap lives only for this call, so the observer does not escape it.
        let result: Result<[[Float]], InferenceError> = withoutActuallyEscaping(observer) { observer in
            Result { () throws(InferenceError) -> [[Float]] in
                try embed(graphInput: graphInput, batchSize: batchSize, tap: LayerTap(observer: observer))
            }
        }
        return try result.get()
    }

    /// Runs the network on a batch of normalized input, [N, C, H, W] float32: the values the
    /// stem convolution reads, (v - inputMean) * inputScale for pixels v in 0...255.
    ///
    /// - Returns: one raw (not L2-normalized) embedding per image, in input order.
    /// - Throws: `InferenceError` as `rawEmbeddings(graphInput:batchSize:)` does.
    public func rawEmbeddings(normalizedInput: [Float], batchSize: Int) throws(InferenceError) -> [[Float]] {
        try checkInput(normalizedInput, batchSize: batchSize)
        return try embed(normalizedInput, batchSize: batchSize)
    }

    /// Returns v / ||v||, the form in which embeddings are compared by cosine (dot product).
    ///
    /// - Throws: `InferenceError.zeroVector` for an empty or all-zero vector and
    ///   `.nonFiniteVector` for one holding NaN or infinity. It never returns NaN.
    public static func l2Normalized(_ v: [Float]) throws(InferenceError) -> [Float] {
        try l2Normalize(v)
    }

    /// Lists per-layer output shapes, parameter counts and FLOPs for one face, in forward order.
    ///
    /// Parameters are counted as PyTorch's `IResNet` module counts them, whether or not a
    /// weight file folded its batch norms. They are the convolution weights (the convolutions
    /// have no bias), batch norm weight and bias, PReLU slopes, and `fc` and `features`
    /// weight and bias. Running statistics are buffers in PyTorch, not parameters. FLOPs are 2 per multiply-add of
    /// the convolutions and `fc`. Batch norm, PReLU and the residual additions are
    /// element-wise and counted as 0. For r100 at 112x112 the totals are about 65.2M
    /// parameters and 24.2 GFLOPs.
    ///
    /// - Parameter foldedBatchNorms: batch norms to mark as folded (`foldedInto`).
    public static func layerSummary(
        for architecture: IResNetArchitecture, foldedBatchNorms: Set<String>
    ) -> [LayerSummaryRow] {
        architecture.layerSummary(foldedBatchNorms: foldedBatchNorms)
    }

    /// The OpenBLAS build, kernels and own thread count (1 unless changed through
    /// `OpenBLAS.setThreadCount(_:)`; models bring their own threads). Loads OpenBLAS on first use.
    public static var blasInfo: BLASInfo {
        get throws(BLASError) { try OpenBLAS.load() }
    }

    private func checkInput(_ input: [Float], batchSize: Int) throws(InferenceError) {
        guard batchSize >= 1 else {
            throw .invalidBatchSize(batchSize)
        }
        let imageShape = [architecture.inputChannels, architecture.inputSize, architecture.inputSize]
        let imageSize = imageShape.reduce(1, *)
        let (expected, overflow) = batchSize.multipliedReportingOverflow(by: imageSize)
        guard !overflow, input.count == expected else {
            throw .inputSizeMismatch(
                expected: overflow ? Int.max : expected, found: input.count, batchSize: batchSize,
                imageShape: imageShape)
        }
        var nonFinite = 0
        var firstIndex = -1
        for (index, value) in input.enumerated() where !value.isFinite {
            nonFinite += 1
            if firstIndex < 0 {
                firstIndex = index
            }
        }
        guard nonFinite == 0 else {
            throw .nonFiniteInput(count: nonFinite, firstIndex: firstIndex)
        }
    }

    private func embed(graphInput: [Float], batchSize: Int, tap: LayerTap?) throws(InferenceError) -> [[Float]] {
        try checkInput(graphInput, batchSize: batchSize)
        guard metadata.inputNormalizationInGraph else {
            return try embed(graphInput, batchSize: batchSize, tap: tap)
        }
        let mean = metadata.inputMean
        let scale = metadata.inputScale
        return try embed(graphInput.map { ($0 - mean) * scale }, batchSize: batchSize, tap: tap)
    }

    /// Runs the network on `batchSize` images and returns the outputs, all images concatenated.
    ///
    /// With several threads and at least as many images, whole images go to the threads. Each of
    /// the first `threadCount * k` images (k as large as fits) runs on one thread. The remaining
    /// images then run as one batch over all the threads. On 2 cores this beat splitting
    /// every layer over both threads at batch 8 (each image's layers are too small to keep
    /// two threads busy without waiting on each other). It changes no bits: an image's result
    /// does not depend on its batch or on the thread count (see ThreadingTests). A pass with a
    /// layer observer runs as one batch, so that the observer sees each layer once, in order.
    private func forward(_ input: [Float], batchSize: Int, tap: LayerTap?) -> [Float] {
        let imageLength = input.count / batchSize
        let split = tap == nil && threadCount > 1 ? batchSize / threadCount * threadCount : 0

        func run(_ images: Range<Int>, workers: Int) -> [Float] {
            let size = architecture.inputSize
            let x = FeatureMap(
                batch: images.count, channels: architecture.inputChannels, height: size, width: size,
                values: Array(input[(images.lowerBound * imageLength)..<(images.upperBound * imageLength)]))
            let context = InferenceContext(workers: workers, cache: bufferCache)
            defer { context.finish() }
            return network(x, context: context, tap: tap).values
        }

        guard split > 0 else {
            return run(0..<batchSize, workers: threadCount)
        }
        // One group of split / threadCount images per thread, each group on one worker.
        var groups = [[Float]](repeating: [], count: threadCount)
        groups.withUnsafeMutableBufferPointer { slots in
            forEachIndex(count: threadCount, workers: threadCount) { group in
                let perGroup = split / threadCount
                slots[group] = run((group * perGroup)..<((group + 1) * perGroup), workers: 1)
            }
        }
        if split < batchSize {
            groups.append(run(split..<batchSize, workers: threadCount))
        }
        return Array(groups.joined())
    }

    private func embed(
        _ input: [Float], batchSize: Int, tap: LayerTap? = nil
    ) throws(InferenceError) -> [[Float]] {
        let output = forward(input, batchSize: batchSize, tap: tap)
        let length = output.count / batchSize
        let embeddings = (0..<batchSize).map { n in
            Array(output[(n * length)..<((n + 1) * length)])
        }
        // Finite input and finite weights can still overflow float32 inside the network; an
        // embedding holding NaN would compare as "not similar" to everything without a word.
        for (image, embedding) in embeddings.enumerated() {
            let nonFinite = embedding.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
            if nonFinite > 0 {
                throw .nonFiniteOutput(image: image, count: nonFinite)
            }
        }
        return embeddings
    }
}
