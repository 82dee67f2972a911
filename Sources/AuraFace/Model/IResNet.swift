// Ports IResNet.forward from arcface_torch/backbones/iresnet.py (deepinsight/insightface,
// master branch), the backbone of AuraFace-v1 (glintr100, IResNet-100).

/// The IResNet network with its weights: stem, four stages, embedding head.
///
/// Input [N, C, H, W] normalized pixels; output [N, embeddingSize] raw embeddings (not L2
/// normalized). Shape comments give AuraFace's sizes: r100 widths with a 3x112x112 input.
struct IResNet: Sendable {
    // Stem.
    let conv1: Conv2D
    let bn1: BatchNorm?
    let prelu: PReLU

    let layer1: IResNetStage
    let layer2: IResNetStage
    let layer3: IResNetStage
    let layer4: IResNetStage

    // Head.
    let bn2: BatchNorm
    let fc: FullyConnected
    let features: BatchNorm?

    /// Runs the network. With a `tap`, each layer's output is reported under its PyTorch module
    /// path after the layer runs. A convolution whose batch norm was folded into its bias is
    /// reported under the batch norm's name, because its output equals that batch norm's
    /// output in PyTorch. A block reports its sum as `layerS.B`.
    ///
    /// `context` sets the threads and keeps the buffers of this pass. Without a tap, the stem's
    /// batch norm and PReLU run inside its convolution, as in the blocks (see
    /// `IBasicBlock.callAsFunction`).
    func callAsFunction(_ input: FeatureMap, context: InferenceContext, tap: LayerTap? = nil) -> FeatureMap {
        var x: FeatureMap
        if let tap {
            x = conv1.forward(input, context: context)  // [N, 3, 112, 112] -> [N, 64, 112, 112]
            tap.convolution("conv1", x, before: bn1)
            x = bn1(x)
            tap("bn1", x)
            x = prelu(x)
            tap("prelu", x)
        } else {
            x = conv1.forward(input, context: context, fusion: ConvolutionFusion(outputNorm: bn1, prelu: prelu))
        }

        // Each stage's input is dead once the stage ran, and the next stage's buffers have
        // other sizes, so a context without a cache empties its pool between stages. A context
        // with one keeps the buffers for the next call.
        for (stage, name) in [(layer1, "layer1"), (layer2, "layer2"), (layer3, "layer3"), (layer4, "layer4")] {
            // -> [N, 64, 56, 56], [N, 128, 28, 28], [N, 256, 14, 14], [N, 512, 7, 7]
            let next = stage(x, context: context, tap: tap?.scoped(name))
            x = next
            context.releaseBuffers()
        }

        x = bn2(x)
        tap?("bn2", x)
        x = flatten(x)  // -> [N, 25088]
        // Dropout comes here in training and is the identity at inference.
        x = fc.forward(x, context: context)  // -> [N, 512]
        if features != nil {
            tap?.flat("fc", x)
        }
        x = features(x)  // BatchNorm1d
        tap?.flat("features", x)
        return x
    }
}
