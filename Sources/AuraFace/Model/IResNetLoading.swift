// Building an IResNet from a safetensors weight file: every tensor's name and shape checked
// against the architecture first, then the layers assembled, each tensor's values read and
// checked (finite, non-negative variance) when its layer is built.

extension IResNet {
    /// Checks the tensors of `file` against `metadata` and builds the network, with its 3x3
    /// stride-1 convolutions computed by `convolution`, preparing weights on up to `workers`
    /// threads.
    ///
    /// - Throws: `WeightFileError.missingTensor`, `.unexpectedTensor` or `.shapeMismatch`
    ///   when the tensors do not match `metadata.architecture` and its folded batch norms
    ///   (missing tensors are reported first, in forward order). These checks all run before
    ///   any value is read. Then, in the order the layers are built: `.nonFiniteValues` for NaN
    ///   or infinite weights, `.invalidValues` for a negative running variance or a batch norm
    ///   whose scale overflows, and `.unreadable` when `file` fails to read a tensor.
    init(
        file: any TensorSource, metadata: WeightFileMetadata, convolution: ConvolutionAlgorithm = .winograd,
        workers: Int = 1
    ) throws(WeightFileError) {
        var weights = try CheckedWeights(file: file, metadata: metadata)
        weights.convolution = convolution
        weights.workers = workers
        let architecture = metadata.architecture

        conv1 = try weights.conv("conv1", stride: 1, padding: 1)
        bn1 = try weights.batchNorm("bn1")
        prelu = try weights.prelu("prelu")

        var stages: [IResNetStage] = []
        for stage in 0..<4 {
            var blocks: [IBasicBlock] = []
            for block in 0..<architecture.stageDepths[stage] {
                let name = IResNetArchitecture.blockName(stage: stage, block: block)
                // Every stage halves the spatial size in its first block.
                let stride = block == 0 ? 2 : 1
                var downsample: Downsample?
                if block == 0 {
                    downsample = Downsample(
                        conv: try weights.conv("\(name).downsample.0", stride: stride, padding: 0),
                        bn: try weights.batchNorm("\(name).downsample.1"))
                }
                guard let bn1 = try weights.batchNorm("\(name).bn1") else {
                    preconditionFailure("\(name).bn1 follows no layer, so it cannot be folded")
                }
                blocks.append(
                    IBasicBlock(
                        bn1: bn1,
                        conv1: try weights.conv("\(name).conv1", stride: 1, padding: 1),
                        bn2: try weights.batchNorm("\(name).bn2"),
                        prelu: try weights.prelu("\(name).prelu"),
                        conv2: try weights.conv("\(name).conv2", stride: stride, padding: 1),
                        bn3: try weights.batchNorm("\(name).bn3"),
                        downsample: downsample))
            }
            stages.append(IResNetStage(blocks: blocks))
        }
        layer1 = stages[0]
        layer2 = stages[1]
        layer3 = stages[2]
        layer4 = stages[3]

        guard let bn2 = try weights.batchNorm("bn2") else {
            preconditionFailure("bn2 follows no layer, so it cannot be folded")
        }
        self.bn2 = bn2
        fc = FullyConnected(
            inFeatures: architecture.flattenedSize, outFeatures: architecture.embeddingSize,
            weight: try weights.tensor("fc.weight"), bias: try weights.tensor("fc.bias"))
        features = try weights.batchNorm("features")
    }
}

/// The source of a weight file's tensor values: a file held in memory, or a file on disk read
/// one tensor at a time. Both have passed the safetensors header checks.
protocol TensorSource {
    /// The file, for error messages.
    var path: String { get }
    var header: SafeTensorsHeader { get }
    /// Returns a copy of a tensor's values.
    func floats(for entry: SafeTensorsEntry) throws(WeightFileError) -> [Float]
    /// Calls `body` with a tensor's values, without a copy when the source allows it.
    func withFloats<R>(
        of entry: SafeTensorsEntry, _ body: (UnsafeBufferPointer<Float>) -> R
    ) throws(WeightFileError) -> R
}

extension SafeTensorsFile: TensorSource {
    /// Calls `body` with a tensor's float32 values where they lie in the file's bytes, without
    /// a copy when they are 4-byte aligned (the case for files this library writes), or with a
    /// copy otherwise. The file is little-endian, as is every platform this library builds on.
    func withFloats<R>(of entry: SafeTensorsEntry, _ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        let start = dataStart + entry.dataRange.lowerBound
        let count = entry.elementCount
        // The header checks proved that the entry's byte range lies inside the data section
        // and contains count * 4 bytes.
        return bytes.withUnsafeBytes { raw in
            let address = raw.baseAddress! + start
            guard Int(bitPattern: address) % MemoryLayout<Float>.alignment == 0 else {
                return floats(for: entry).withUnsafeBufferPointer(body)
            }
            return address.withMemoryRebound(to: Float.self, capacity: count) { floats in
                body(UnsafeBufferPointer(start: floats, count: count))
            }
        }
    }
}

extension SafeTensorsFileReader: TensorSource {}

/// A weight file's tensors after the header checks: every tensor the architecture needs is
/// present with its shape, and no other is. Values are read from `file` only when their layer
/// is built, one tensor at a time, and checked then: `tensor` returns a checked copy, and
/// `conv` hands a Winograd convolution the checked values in place (in the file's bytes for a
/// file in memory, in a scratch buffer reused for every tensor for a file on disk), so loading
/// from disk holds one tensor's raw values at a time on top of what the layers keep.
private struct CheckedWeights {
    let path: String
    let eps: Float
    let folded: Set<String>
    let file: any TensorSource
    let shapes: [String: [Int]]
    /// The algorithm of the 3x3 stride-1 convolutions that `conv` builds.
    var convolution = ConvolutionAlgorithm.winograd
    /// Threads for the Winograd weight transforms.
    var workers = 1

    init(file: any TensorSource, metadata: WeightFileMetadata) throws(WeightFileError) {
        path = file.path
        eps = metadata.batchNormEpsilon
        folded = Set(metadata.foldedBatchNorms)
        self.file = file
        let expected = metadata.architecture.expectedTensors(foldedBatchNorms: folded)

        for (name, shape) in expected {
            guard let entry = file.header.entry(named: name) else {
                throw .missingTensor(path: path, tensor: name)
            }
            guard entry.shape == shape else {
                throw .shapeMismatch(path: path, tensor: name, expected: shape, found: entry.shape)
            }
        }
        let expectedNames = Set(expected.map(\.name))
        if let extra = file.header.entries.first(where: { !expectedNames.contains($0.name) }) {
            throw .unexpectedTensor(path: path, tensor: extra.name)
        }
        shapes = Dictionary(uniqueKeysWithValues: expected.map { ($0.name, $0.shape) })
    }

    /// Returns the entry of a tensor that the header checks proved present.
    private func entry(_ name: String) -> SafeTensorsEntry {
        guard shapes[name] != nil, let entry = file.header.entry(named: name) else {
            preconditionFailure("tensor '\(name)' is not in the checked architecture")
        }
        return entry
    }

    /// Returns the problem with a tensor's values, or nil when there is none.
    private func problem(in values: UnsafeBufferPointer<Float>, of name: String) -> WeightFileError? {
        let nonFinite = countNonFinite(values)
        guard nonFinite == 0 else {
            return .nonFiniteValues(path: path, tensor: name, count: nonFinite)
        }
        if name.hasSuffix(".running_var"), let index = values.firstIndex(where: { $0 < 0 }) {
            return .invalidValues(
                path: path, tensor: name, reason: "variance \(values[index]) at index \(index) is negative")
        }
        return nil
    }

    /// Reads a tensor's values and checks them.
    ///
    /// - Throws: `WeightFileError.nonFiniteValues`, `.invalidValues` for a negative running
    ///   variance, or the read error of `file`.
    func tensor(_ name: String) throws(WeightFileError) -> [Float] {
        let values = try file.floats(for: entry(name))
        if let problem = values.withUnsafeBufferPointer({ problem(in: $0, of: name) }) {
            throw problem
        }
        return values
    }

    /// Builds the convolution `name` with the sizes of its checked weight shape. It has a bias
    /// exactly when the architecture expects one, which is when its batch norm was folded.
    func conv(_ name: String, stride: Int, padding: Int) throws(WeightFileError) -> Conv2D {
        let shape = shapes[name + ".weight"]!
        let bias = shapes[name + ".bias"] != nil ? try tensor(name + ".bias") : nil
        let built = try file.withFloats(of: entry(name + ".weight")) { weights -> Result<Conv2D, WeightFileError> in
            if let problem = problem(in: weights, of: name + ".weight") {
                return .failure(problem)
            }
            return .success(
                Conv2D(
                    inChannels: shape[1], outChannels: shape[0], kernelSize: shape[2],
                    stride: stride, padding: padding, weights: weights, bias: bias,
                    algorithm: convolution, workers: workers))
        }
        return try built.get()
    }

    /// Builds the batch norm `name`, or returns nil when it was folded into the layer before it.
    ///
    /// - Throws: `WeightFileError.invalidValues` when the precomputed scale or shift
    ///   overflows Float, or what `tensor` throws.
    func batchNorm(_ name: String) throws(WeightFileError) -> BatchNorm? {
        if folded.contains(name) {
            return nil
        }
        let norm = BatchNorm(
            weight: try tensor(name + ".weight"), bias: try tensor(name + ".bias"),
            runningMean: try tensor(name + ".running_mean"),
            runningVariance: try tensor(name + ".running_var"), eps: eps)
        guard countNonFinite(norm.scale) == 0 && countNonFinite(norm.shift) == 0 else {
            throw .invalidValues(
                path: path, tensor: name + ".weight",
                reason: "weight / sqrt(running_var + \(eps)) or the shift overflows float32")
        }
        return norm
    }

    func prelu(_ name: String) throws(WeightFileError) -> PReLU {
        PReLU(slope: try tensor(name + ".weight"))
    }
}

/// Counts the NaN and infinite values, which are those whose exponent bits are all ones. Integer
/// tests on the bit pattern let the compiler vectorize this pass over 65M weights.
private func countNonFinite(_ values: [Float]) -> Int {
    values.withUnsafeBufferPointer(countNonFinite)
}

private func countNonFinite(_ buffer: UnsafeBufferPointer<Float>) -> Int {
    var count = 0
    for value in buffer {
        count &+= value.bitPattern & 0x7F80_0000 == 0x7F80_0000 ? 1 : 0
    }
    return count
}
