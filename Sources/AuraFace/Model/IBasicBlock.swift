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

    func callAsFunction(_ x: borrowing FeatureMap, context: InferenceContext, tap: LayerTap? = nil) -> FeatureMap {
        guard let tap else {
            return conv.forward(x, context: context, fusion: ConvolutionFusion(outputNorm: bn))
        }
        var y = conv.forward(x, context: context)  // [N, Cin, H, W] -> [N, C, H/s, W/s]
        tap.convolution("0", y, before: bn)
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
    ///
    /// Without a tap the layers between the convolutions run inside them (`ConvolutionFusion`):
    /// bn1 in conv1's input transform, bn2 and PReLU on conv1's output planes, bn3 and the
    /// residual addition on conv2's. Each fused step computes what its layer computes alone, so
    /// both ways give the same bits. A traced pass runs the layers one by one to report them.
    func callAsFunction(_ x: FeatureMap, context: InferenceContext, tap: LayerTap? = nil) -> FeatureMap {
        guard let tap else {
            let hidden = conv1.forward(
                x, context: context, fusion: ConvolutionFusion(inputNorm: bn1, outputNorm: bn2, prelu: prelu))
            let identity = downsample.map { $0(x, context: context) }
            let out = conv2.forward(
                hidden, context: context,
                fusion: ConvolutionFusion(outputNorm: bn3, residual: identity?.values ?? x.values))
            context.recycle(hidden.values)
            if let identity {
                context.recycle(identity.values)
            }
            return out
        }
        var out = bn1(x)  // Pre-activation: normalize the block input before convolving.
        tap("bn1", out)
        out = conv1.forward(out, context: context)  // [N, Cin, H, W] -> [N, C, H, W]
        tap.convolution("conv1", out, before: bn2)
        out = bn2(out)
        tap("bn2", out)
        out = prelu(out)
        tap("prelu", out)

        out = conv2.forward(out, context: context)  // The stride is here: [N, C, H, W] -> [N, C, H/s, W/s]
        tap.convolution("conv2", out, before: bn3)
        out = bn3(out)
        tap("bn3", out)

        guard let downsample else {
            return out + x
        }
        let identity = downsample(x, context: context, tap: tap.scoped("downsample"))
        tap("downsample", identity)
        return out + identity
    }
}

/// One stage (`layer1` ... `layer4`): IBasicBlocks applied in order. The first block
/// halves the spatial size and changes the channel count, so it has the downsample.
struct IResNetStage: Sendable {
    let blocks: [IBasicBlock]

    /// Runs the blocks. Each block's input goes back to `context`'s pool once the next block
    /// has consumed it, except the stage's own input, which belongs to the caller.
    func callAsFunction(_ x: FeatureMap, context: InferenceContext, tap: LayerTap? = nil) -> FeatureMap {
        var y = x
        for (index, block) in blocks.enumerated() {
            let blockTap = tap?.scoped(String(index))
            let next = block(y, context: context, tap: blockTap)
            if index > 0 {
                context.recycle(y.values)
            }
            y = next
            blockTap?.output(y)
        }
        return y
    }
}
