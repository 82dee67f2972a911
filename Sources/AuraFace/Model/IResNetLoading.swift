// Building an IResNet from a safetensors weight file: every tensor checked against the
// architecture first (names, shapes, finite values), then the layers assembled.

extension IResNet {
    /// Checks the file's tensors against `metadata` and builds the network, with its 3x3
    /// stride-1 convolutions computed by `convolution`, preparing weights on up to `workers`
    /// threads.
    ///
    /// - Throws: `WeightFileError.missingTensor`, `.unexpectedTensor` or `.shapeMismatch`
    ///   when the tensors do not match `metadata.architecture` and its folded batch norms
    ///   (missing tensors are reported first, in forward order), `.nonFiniteValues` for NaN or
    ///   infinite weights, `.invalidValues` for a negative running variance.
    init(
        file: SafeTensorsFile, metadata: WeightFileMetadata, convolution: ConvolutionAlgorithm = .winograd,
        workers: Int = 1
    ) throws(WeightFileError) {
        var weights = try CheckedWeights(file: file, metadata: metadata)
        weights.convolution = convolution
        weights.workers = workers
        let architecture = metadata.architecture

        conv1 = weights.conv("conv1", stride: 1, padding: 1)
        bn1 = try weights.batchNorm("bn1")
        prelu = weights.prelu("prelu")

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
                        conv: weights.conv("\(name).downsample.0", stride: stride, padding: 0),
                        bn: try weights.batchNorm("\(name).downsample.1"))
                }
                guard let bn1 = try weights.batchNorm("\(name).bn1") else {
                    preconditionFailure("\(name).bn1 follows no layer, so it cannot be folded")
                }
                blocks.append(
                    IBasicBlock(
                        bn1: bn1,
                        conv1: weights.conv("\(name).conv1", stride: 1, padding: 1),
                        bn2: try weights.batchNorm("\(name).bn2"),
                        prelu: weights.prelu("\(name).prelu"),
                        conv2: weights.conv("\(name).conv2", stride: stride, padding: 1),
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
            weight: weights.tensor("fc.weight"), bias: weights.tensor("fc.bias"))
        features = try weights.batchNorm("features")
    }
}

/// A weight file's tensors after the checks. Values stay in the file's bytes until a layer
/// asks for them: `tensor` copies them out as a Float array, and `conv` lets a Winograd
/// convolution read them in place, so its untransformed weights (about 170 MB for r100) are
/// never copied.
private struct CheckedWeights {
    let path: String
    let eps: Float
    let folded: Set<String>
    let file: SafeTensorsFile
    let shapes: [String: [Int]]
    /// The algorithm of the 3x3 stride-1 convolutions that `conv` builds.
    var convolution = ConvolutionAlgorithm.winograd
    /// Threads for the Winograd weight transforms.
    var workers = 1

    init(file: SafeTensorsFile, metadata: WeightFileMetadata) throws(WeightFileError) {
        path = file.path
        eps = metadata.batchNormEpsilon
        folded = Set(metadata.foldedBatchNorms)
        self.file = file
        let expected = metadata.architecture.expectedTensors(foldedBatchNorms: folded)

        for (name, shape) in expected {
            guard let entry = file.entry(named: name) else {
                throw .missingTensor(path: path, tensor: name)
            }
            guard entry.shape == shape else {
                throw .shapeMismatch(path: path, tensor: name, expected: shape, found: entry.shape)
            }
        }
        let expectedNames = Set(expected.map(\.name))
        if let extra = file.entries.first(where: { !expectedNames.contains($0.name) }) {
            throw .unexpectedTensor(path: path, tensor: extra.name)
        }

        var shapes: [String: [Int]] = [:]
        shapes.reserveCapacity(expected.count)
        for (name, shape) in expected {
            let entry = file.entry(named: name)!
            let problem = withFloats(of: entry, in: file) { values -> WeightFileError? in
                let nonFinite = countNonFinite(values)
                guard nonFinite == 0 else {
                    return .nonFiniteValues(path: file.path, tensor: name, count: nonFinite)
                }
                if name.hasSuffix(".running_var"), let index = values.firstIndex(where: { $0 < 0 }) {
                    return .invalidValues(
                        path: file.path, tensor: name,
                        reason: "variance \(values[index]) at index \(index) is negative")
                }
                return nil
            }
            if let problem {
                throw problem
            }
            shapes[name] = shape
        }
        self.shapes = shapes
    }

    /// Returns a copy of the values of a tensor that the checks proved present.
    func tensor(_ name: String) -> [Float] {
        guard shapes[name] != nil, let entry = file.entry(named: name) else {
            preconditionFailure("tensor '\(name)' is not in the checked architecture")
        }
        return file.floats(for: entry)
    }

    /// Builds the convolution `name` with the sizes of its checked weight shape. It has a bias
    /// exactly when the architecture expects one, which is when its batch norm was folded.
    func conv(_ name: String, stride: Int, padding: Int) -> Conv2D {
        let shape = shapes[name + ".weight"]!
        let bias = shapes[name + ".bias"] != nil ? tensor(name + ".bias") : nil
        return withFloats(of: file.entry(named: name + ".weight")!, in: file) { weights in
            Conv2D(
                inChannels: shape[1], outChannels: shape[0], kernelSize: shape[2],
                stride: stride, padding: padding, weights: weights, bias: bias,
                algorithm: convolution, workers: workers)
        }
    }

    /// Builds the batch norm `name`, or returns nil when it was folded into the layer before it.
    ///
    /// - Throws: `WeightFileError.invalidValues` when the precomputed scale or shift
    ///   overflows Float.
    func batchNorm(_ name: String) throws(WeightFileError) -> BatchNorm? {
        if folded.contains(name) {
            return nil
        }
        let norm = BatchNorm(
            weight: tensor(name + ".weight"), bias: tensor(name + ".bias"),
            runningMean: tensor(name + ".running_mean"),
            runningVariance: tensor(name + ".running_var"), eps: eps)
        guard countNonFinite(norm.scale) == 0 && countNonFinite(norm.shift) == 0 else {
            throw .invalidValues(
                path: path, tensor: name + ".weight",
                reason: "weight / sqrt(running_var + \(eps)) or the shift overflows float32")
        }
        return norm
    }

    func prelu(_ name: String) -> PReLU {
        PReLU(slope: tensor(name + ".weight"))
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

/// Calls `body` with a tensor's float32 values where they lie in the file's bytes, without a
/// copy when they are 4-byte aligned (the case for files this library writes), or with a
/// copy otherwise. The file is little-endian, as is every platform this library builds on.
private func withFloats<R>(
    of entry: SafeTensorsEntry, in file: SafeTensorsFile, _ body: (UnsafeBufferPointer<Float>) -> R
) -> R {
    let start = file.dataStart + entry.dataRange.lowerBound
    let count = entry.elementCount
    // SafeTensorsFile checked that the entry's byte range lies inside the data section and
    // holds count * 4 bytes.
    return file.bytes.withUnsafeBytes { raw in
        let address = raw.baseAddress! + start
        guard Int(bitPattern: address) % MemoryLayout<Float>.alignment == 0 else {
            return file.floats(for: entry).withUnsafeBufferPointer(body)
        }
        return address.withMemoryRebound(to: Float.self, capacity: count) { floats in
            body(UnsafeBufferPointer(start: floats, count: count))
        }
    }
}
