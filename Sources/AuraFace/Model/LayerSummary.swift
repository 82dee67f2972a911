// Per-layer parameter and FLOP counts of an IResNet, for `auraface inspect`.

/// One row of `AuraFaceModel.layerSummary(for:foldedBatchNorms:)`.
public struct LayerSummaryRow: Sendable, Equatable {
    /// The PyTorch module path, such as `layer1.0.conv2`. A block's own row (`layer1.0`) is
    /// its residual addition, and `flatten` is the reshape before `fc`.
    public var name: String
    /// The layer type, such as `Conv2d 3x3 stride 2` or `BatchNorm2d`.
    public var kind: String
    /// The output shape of one face, [C, H, W] for feature maps and [C] after `flatten`.
    public var outputShape: [Int]
    /// The learnable parameters that PyTorch's module has (see the summary's doc comment).
    public var parameters: Int
    /// Floating-point operations for one face: 2 per multiply-add of a convolution or `fc`,
    /// 0 for element-wise layers.
    public var flops: Int
    /// For a batch norm folded into the layer before it, that layer's module path.
    public var foldedInto: String?
}

extension IResNetArchitecture {
    /// Builds the rows of `AuraFaceModel.layerSummary(for:foldedBatchNorms:)`, in forward order.
    func layerSummary(foldedBatchNorms: Set<String>) -> [LayerSummaryRow] {
        var rows: [LayerSummaryRow] = []
        var channels = inputChannels
        var size = inputSize

        func conv(_ name: String, outChannels: Int, kernelSize: Int, stride: Int) {
            let outSize = (size + 2 * (kernelSize / 2) - kernelSize) / stride + 1
            let weights = outChannels * channels * kernelSize * kernelSize
            rows.append(
                LayerSummaryRow(
                    name: name, kind: "Conv2d \(kernelSize)x\(kernelSize) stride \(stride)",
                    outputShape: [outChannels, outSize, outSize], parameters: weights,
                    flops: 2 * weights * outSize * outSize))
            channels = outChannels
            size = outSize
        }
        func batchNorm(_ name: String, follows: String?) {
            rows.append(
                LayerSummaryRow(
                    name: name, kind: "BatchNorm2d", outputShape: [channels, size, size],
                    parameters: 2 * channels, flops: 0,
                    foldedInto: foldedBatchNorms.contains(name) ? follows : nil))
        }
        func prelu(_ name: String) {
            rows.append(
                LayerSummaryRow(
                    name: name, kind: "PReLU", outputShape: [channels, size, size],
                    parameters: channels, flops: 0))
        }

        conv("conv1", outChannels: stemWidth, kernelSize: 3, stride: 1)
        batchNorm("bn1", follows: "conv1")
        prelu("prelu")

        for stage in 0..<stageDepths.count {
            let width = stageWidths[stage]
            for block in 0..<stageDepths[stage] {
                let prefix = Self.blockName(stage: stage, block: block)
                let stride = block == 0 ? 2 : 1
                let (blockInChannels, blockInSize) = (channels, size)

                batchNorm("\(prefix).bn1", follows: nil)
                conv("\(prefix).conv1", outChannels: width, kernelSize: 3, stride: 1)
                batchNorm("\(prefix).bn2", follows: "\(prefix).conv1")
                prelu("\(prefix).prelu")
                conv("\(prefix).conv2", outChannels: width, kernelSize: 3, stride: stride)
                batchNorm("\(prefix).bn3", follows: "\(prefix).conv2")
                if block == 0 {
                    let (outChannels, outSize) = (channels, size)
                    (channels, size) = (blockInChannels, blockInSize)
                    conv("\(prefix).downsample.0", outChannels: width, kernelSize: 1, stride: stride)
                    batchNorm("\(prefix).downsample.1", follows: "\(prefix).downsample.0")
                    precondition(channels == outChannels && size == outSize)
                }
                rows.append(
                    LayerSummaryRow(
                        name: prefix, kind: "IBasicBlock residual add",
                        outputShape: [channels, size, size], parameters: 0, flops: 0))
            }
        }

        batchNorm("bn2", follows: nil)
        let flattened = channels * size * size
        rows.append(
            LayerSummaryRow(
                name: "flatten", kind: "Flatten", outputShape: [flattened], parameters: 0,
                flops: 0))
        rows.append(
            LayerSummaryRow(
                name: "fc", kind: "Linear", outputShape: [embeddingSize],
                parameters: embeddingSize * flattened + embeddingSize,
                flops: 2 * embeddingSize * flattened))
        rows.append(
            LayerSummaryRow(
                name: "features", kind: "BatchNorm1d", outputShape: [embeddingSize],
                parameters: 2 * embeddingSize, flops: 0,
                foldedInto: foldedBatchNorms.contains("features") ? "fc" : nil))
        return rows
    }
}
