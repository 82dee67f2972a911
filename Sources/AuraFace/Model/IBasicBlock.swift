// Ports IBasicBlock from arcface_torch/backbones/iresnet.py (deepinsight/insightface, master
// branch): a pre-activation residual block with batch norm before the first convolution and
// PReLU between the two.

/// The shortcut of the first block of a stage: a 1x1 convolution with the block's stride,
/// then a batch norm (PyTorch `Sequential(conv1x1, BatchNorm2d)`, names `downsample.0` and
/// `downsample.1`). It matches the identity to the block output's channels and size.
struct Downsample: Sendable {
    let conv: Conv2D
    /// nil when folded into `conv`'s bias.
    let bn: BatchNorm?

    func callAsFunction(_ x: borrowing FeatureMap, tap: LayerTap? = nil) -> FeatureMap {
        var y = conv(x)  // [N, Cin, H, W] -> [N, C, H/s, W/s]
        tap?.convolution("0", y, before: bn)
        y = bn(y)
        return y
    }
}

/// One IBasicBlock:
///
///     out = bn3(conv2(prelu(bn2(conv1(bn1(x))))))
///     return out + (downsample(x) if present else x)
///
/// conv1 is 3x3 with stride 1. conv2 is 3x3 with the block's stride, which is 2 in the first
/// block of each stage and 1 elsewhere. Both pad by 1. bn2, bn3 and the downsample's batch
/// norm are nil when the exporter folded them into the convolution before them. bn1 cannot
/// be folded, because it comes before conv1's zero padding, which a folded shift would fill.
struct IBasicBlock: Sendable {
    let bn1: BatchNorm
    let conv1: Conv2D
    let bn2: BatchNorm?
    let prelu: PReLU
    let conv2: Conv2D
    let bn3: BatchNorm?
    let downsample: Downsample?

    /// Runs the block, reporting each layer's output to `tap` as `IResNet` describes.
    func callAsFunction(_ x: FeatureMap, tap: LayerTap? = nil) -> FeatureMap {
        var out = bn1(x)  // Pre-activation: normalize the block input before convolving.
        tap?("bn1", out)
        out = conv1(out)  // [N, Cin, H, W] -> [N, C, H, W]
        tap?.convolution("conv1", out, before: bn2)
        out = bn2(out)
        tap?("bn2", out)
        out = prelu(out)
        tap?("prelu", out)

        out = conv2(out)  // The stride is here: [N, C, H, W] -> [N, C, H/s, W/s]
        tap?.convolution("conv2", out, before: bn3)
        out = bn3(out)
        tap?("bn3", out)

        guard let downsample else {
            return out + x
        }
        let identity = downsample(x, tap: tap?.scoped("downsample"))
        tap?("downsample", identity)
        return out + identity
    }
}

/// One stage (`layer1` ... `layer4`): IBasicBlocks applied in order. The first block
/// halves the spatial size and changes the channel count, so it has the downsample.
struct IResNetStage: Sendable {
    let blocks: [IBasicBlock]

    func callAsFunction(_ x: FeatureMap, tap: LayerTap? = nil) -> FeatureMap {
        var y = x
        for (index, block) in blocks.enumerated() {
            let blockTap = tap?.scoped(String(index))
            y = block(y, tap: blockTap)
            blockTap?.output(y)
        }
        return y
    }
}
