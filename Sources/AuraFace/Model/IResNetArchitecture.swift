// The shape of an ArcFace IResNet, after arcface_torch/backbones/iresnet.py in
// deepinsight/insightface: a 3x3 stem, four stages of IBasicBlocks that each halve the
// spatial size, then BatchNorm2d, flatten, Linear and BatchNorm1d to the embedding.

/// The hyperparameters of one IResNet: stage depths and widths, embedding size, input size.
///
/// AuraFace (glintr100) is `IResNetArchitecture.r100`: depths `[3, 13, 30, 3]`, widths
/// `[64, 128, 256, 512]`, a 512-d embedding from a 112x112 RGB face.
public struct IResNetArchitecture: Sendable, Equatable, Hashable {
    /// The number of IBasicBlocks in each of the four stages.
    public var stageDepths: [Int]
    /// The output channels of each stage. The first block of every stage has stride 2.
    public var stageWidths: [Int]
    /// The output channels of the stem convolution (`conv1`), 64 in arcface_torch.
    public var stemWidth: Int
    /// The length of the embedding (`fc` output), 512 for AuraFace.
    public var embeddingSize: Int
    /// The input height and width in pixels. The stages halve it four times, so it must be a
    /// multiple of 16.
    public var inputSize: Int
    /// The input channels, 3 (RGB).
    public var inputChannels: Int

    public init(
        stageDepths: [Int],
        stageWidths: [Int] = [64, 128, 256, 512],
        stemWidth: Int = 64,
        embeddingSize: Int = 512,
        inputSize: Int = 112,
        inputChannels: Int = 3
    ) {
        self.stageDepths = stageDepths
        self.stageWidths = stageWidths
        self.stemWidth = stemWidth
        self.embeddingSize = embeddingSize
        self.inputSize = inputSize
        self.inputChannels = inputChannels
    }

    public static let r18 = IResNetArchitecture(stageDepths: [2, 2, 2, 2])
    public static let r34 = IResNetArchitecture(stageDepths: [3, 4, 6, 3])
    public static let r50 = IResNetArchitecture(stageDepths: [3, 4, 14, 3])
    /// The architecture of AuraFace-v1 (`glintr100.onnx`).
    public static let r100 = IResNetArchitecture(stageDepths: [3, 13, 30, 3])
    public static let r200 = IResNetArchitecture(stageDepths: [6, 26, 60, 6])

    /// The conventional name, such as `iresnet100`: the block count times two plus two
    /// (each block has two convolutions, plus the stem convolution and `fc`).
    public var name: String {
        "iresnet\(stageDepths.reduce(0, +) * 2 + 2)"
    }

    /// The spatial size after the last stage (7 for a 112x112 input).
    public var finalSpatialSize: Int { inputSize / 16 }

    /// The length of the flattened feature map that `fc` reads: `C4 * 7 * 7` for 112x112.
    public var flattenedSize: Int {
        (stageWidths.last ?? 0) * finalSpatialSize * finalSpatialSize
    }

    /// Checks that the numbers describe a network that can be built.
    ///
    /// - Throws: `WeightFileError.invalidArchitecture` naming the first bad value.
    public func validate() throws(WeightFileError) {
        func fail(_ message: String) -> WeightFileError {
            .invalidArchitecture(message)
        }
        guard stageDepths.count == 4 else {
            throw fail("expected 4 stage depths, found \(stageDepths.count): \(stageDepths)")
        }
        guard stageWidths.count == 4 else {
            throw fail("expected 4 stage widths, found \(stageWidths.count): \(stageWidths)")
        }
        guard stageDepths.allSatisfy({ $0 >= 1 && $0 <= 1024 }) else {
            throw fail("stage depths must be between 1 and 1024, found \(stageDepths)")
        }
        guard stageWidths.allSatisfy({ $0 >= 1 && $0 <= 65536 }) else {
            throw fail("stage widths must be between 1 and 65536, found \(stageWidths)")
        }
        guard stemWidth >= 1 && stemWidth <= 65536 else {
            throw fail("stem width must be between 1 and 65536, found \(stemWidth)")
        }
        guard embeddingSize >= 1 && embeddingSize <= 65536 else {
            throw fail("embedding size must be between 1 and 65536, found \(embeddingSize)")
        }
        guard inputSize >= 16 && inputSize <= 4096 && inputSize % 16 == 0 else {
            throw fail("input size must be a multiple of 16 from 16 to 4096, found \(inputSize)")
        }
        guard inputChannels >= 1 && inputChannels <= 4 else {
            throw fail("input channels must be between 1 and 4, found \(inputChannels)")
        }
        // Each field can be within its limit while their products are not: widths of 65536
        // at a 4096x4096 input give about 8.8e20 FLOPs, beyond Int.max.
        let (parameters, flops) = approximateCounts()
        guard parameters < Self.maxCount && flops < Self.maxCount else {
            throw fail(
                "the network would have about \(Self.scientific(parameters)) parameters and "
                    + "\(Self.scientific(flops)) FLOPs per image; expected both below 2^53 "
                    + "(\(Self.scientific(Self.maxCount)))")
        }
    }

    /// The bound `validate()` puts on the parameter count and on the FLOPs per image: 2^53,
    /// the bound below which a `Double` represents every integer exactly. Every row of the layer
    /// summary and every sum of rows then fits in `Int` with room to spare. AuraFace is far
    /// below it: 6.5e7 parameters and 2.4e10 FLOPs.
    static let maxCount: Double = 9_007_199_254_740_992

    /// Returns the parameter count and FLOPs per image that `layerSummary(foldedBatchNorms:)`
    /// adds up, computed in `Double` so that no architecture can overflow them. Requires 4 stages.
    func approximateCounts() -> (parameters: Double, flops: Double) {
        var (parameters, flops) = (0.0, 0.0)
        var channels = Double(inputChannels)
        var size = Double(inputSize)
        // Mirrors `conv` in layerSummary: padding k/2, so for the even sizes that validate()
        // allows the output size is size / stride.
        func conv(_ outChannels: Int, kernelSize: Double, stride: Double) {
            let outSize = ((size + 2 * (kernelSize / 2).rounded(.down) - kernelSize) / stride).rounded(.down) + 1
            let weights = Double(outChannels) * channels * kernelSize * kernelSize
            parameters += weights
            flops += 2 * weights * outSize * outSize
            (channels, size) = (Double(outChannels), outSize)
        }
        conv(stemWidth, kernelSize: 3, stride: 1)
        parameters += 3 * channels  // bn1 and prelu
        for stage in 0..<4 {
            let width = stageWidths[stage]
            for block in 0..<stageDepths[stage] {
                let (blockInChannels, blockInSize) = (channels, size)
                parameters += 2 * channels  // bn1
                conv(width, kernelSize: 3, stride: 1)
                parameters += 3 * channels  // bn2 and prelu
                conv(width, kernelSize: 3, stride: block == 0 ? 2 : 1)
                parameters += 2 * channels  // bn3
                if block == 0 {
                    let (outChannels, outSize) = (channels, size)
                    (channels, size) = (blockInChannels, blockInSize)
                    conv(width, kernelSize: 1, stride: 2)
                    parameters += 2 * channels  // downsample.1
                    (channels, size) = (outChannels, outSize)
                }
            }
        }
        parameters += 2 * channels  // bn2
        let flattened = channels * size * size
        let embedding = Double(embeddingSize)
        parameters += embedding * flattened + embedding + 2 * embedding  // fc and features
        flops += 2 * embedding * flattened
        return (parameters, flops)
    }

    /// Formats a positive count as "9.0e15": two significant digits (this file does not
    /// import Foundation).
    static func scientific(_ value: Double) -> String {
        var (mantissa, exponent) = (value, 0)
        while mantissa >= 10 {
            mantissa /= 10
            exponent += 1
        }
        mantissa = (mantissa * 10).rounded() / 10
        if mantissa >= 10 {
            (mantissa, exponent) = (mantissa / 10, exponent + 1)
        }
        return "\(mantissa)e\(exponent)"
    }
}

/// The name and shape of every tensor an IResNet weight file may hold.
///
/// Names follow the PyTorch module tree of arcface_torch's `IResNet`: `conv1.weight`,
/// `layer3.17.bn1.running_var`, `layer2.0.downsample.0.weight`, `fc.weight`,
/// `features.running_mean`. A batch norm that the exporter folded into the convolution
/// before it has no tensors of its own: that convolution has a `bias` instead.
extension IResNetArchitecture {
    /// One batch norm layer's place in the network.
    public struct BatchNormSlot: Sendable, Equatable {
        /// The module path, such as `layer1.0.bn2` or `features`.
        public var name: String
        public var channels: Int
        /// The convolution or linear layer whose output this batch norm normalizes, if any.
        /// Only such batch norms can be folded into the layer before them; a block's `bn1`,
        /// which normalizes the block input before zero padding, cannot.
        public var follows: String?
    }

    /// One convolution or linear layer's place in the network.
    public struct WeightLayerSlot: Sendable, Equatable {
        /// The module path, such as `layer1.0.conv1` or `fc`.
        public var name: String
        /// `[outChannels, inChannels, kernelSize, kernelSize]` for a convolution,
        /// `[outFeatures, inFeatures]` for `fc`.
        public var weightShape: [Int]
    }

    /// The module path of block `block` (0-based) in stage `stage` (0-based): `layer1.0` is the
    /// first block of the first stage, as in PyTorch.
    public static func blockName(stage: Int, block: Int) -> String {
        "layer\(stage + 1).\(block)"
    }

    /// Every convolution and linear layer, in forward order.
    public var weightLayers: [WeightLayerSlot] {
        var slots = [WeightLayerSlot(name: "conv1", weightShape: [stemWidth, inputChannels, 3, 3])]
        var inChannels = stemWidth
        for stage in 0..<stageDepths.count {
            let width = stageWidths[stage]
            for block in 0..<stageDepths[stage] {
                let prefix = Self.blockName(stage: stage, block: block)
                slots.append(.init(name: "\(prefix).conv1", weightShape: [width, inChannels, 3, 3]))
                slots.append(.init(name: "\(prefix).conv2", weightShape: [width, width, 3, 3]))
                if block == 0 {
                    slots.append(
                        .init(name: "\(prefix).downsample.0", weightShape: [width, inChannels, 1, 1]))
                }
                inChannels = width
            }
        }
        slots.append(.init(name: "fc", weightShape: [embeddingSize, flattenedSize]))
        return slots
    }

    /// Every batch norm, in forward order.
    public var batchNorms: [BatchNormSlot] {
        var slots = [BatchNormSlot(name: "bn1", channels: stemWidth, follows: "conv1")]
        var inChannels = stemWidth
        for stage in 0..<stageDepths.count {
            let width = stageWidths[stage]
            for block in 0..<stageDepths[stage] {
                let prefix = Self.blockName(stage: stage, block: block)
                slots.append(.init(name: "\(prefix).bn1", channels: inChannels, follows: nil))
                slots.append(.init(name: "\(prefix).bn2", channels: width, follows: "\(prefix).conv1"))
                slots.append(.init(name: "\(prefix).bn3", channels: width, follows: "\(prefix).conv2"))
                if block == 0 {
                    slots.append(
                        .init(
                            name: "\(prefix).downsample.1", channels: width,
                            follows: "\(prefix).downsample.0"))
                }
                inChannels = width
            }
        }
        slots.append(.init(name: "bn2", channels: stageWidths.last ?? 0, follows: nil))
        slots.append(.init(name: "features", channels: embeddingSize, follows: "fc"))
        return slots
    }

    /// Every PReLU's module path and channel count, in forward order.
    public var preluLayers: [(name: String, channels: Int)] {
        var slots = [(name: "prelu", channels: stemWidth)]
        for stage in 0..<stageDepths.count {
            for block in 0..<stageDepths[stage] {
                slots.append((Self.blockName(stage: stage, block: block) + ".prelu", stageWidths[stage]))
            }
        }
        return slots
    }

    /// The tensors a weight file must hold, given which batch norms were folded away.
    ///
    /// A folded batch norm contributes no tensors, and the layer it follows gains a `bias`.
    /// `fc` always has a bias; a convolution has one only when its batch norm was folded.
    /// PReLU slopes are stored as `[C]`, as in PyTorch.
    ///
    /// - Parameter foldedBatchNorms: module paths of batch norms folded into the layer before.
    /// - Returns: `(name, shape)` pairs in forward order.
    public func expectedTensors(foldedBatchNorms: Set<String>) -> [(name: String, shape: [Int])] {
        var tensors: [(name: String, shape: [Int])] = []
        let folded = Dictionary(
            uniqueKeysWithValues: batchNorms.compactMap { slot in
                slot.follows.map { ($0, foldedBatchNorms.contains(slot.name)) }
            })
        for layer in weightLayers {
            tensors.append((layer.name + ".weight", layer.weightShape))
            if layer.name == "fc" || folded[layer.name] == true {
                tensors.append((layer.name + ".bias", [layer.weightShape[0]]))
            }
        }
        for norm in batchNorms where !foldedBatchNorms.contains(norm.name) {
            for field in ["weight", "bias", "running_mean", "running_var"] {
                tensors.append((norm.name + "." + field, [norm.channels]))
            }
        }
        for prelu in preluLayers {
            tensors.append((prelu.name + ".weight", [prelu.channels]))
        }
        return tensors
    }
}
