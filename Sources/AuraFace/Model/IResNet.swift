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

    func callAsFunction(_ input: FeatureMap) -> FeatureMap {
        var x = conv1(input)  // [N, 3, 112, 112] -> [N, 64, 112, 112]
        x = bn1(x)
        x = prelu(x)

        x = layer1(x)  // -> [N, 64, 56, 56]
        x = layer2(x)  // -> [N, 128, 28, 28]
        x = layer3(x)  // -> [N, 256, 14, 14]
        x = layer4(x)  // -> [N, 512, 7, 7]

        x = bn2(x)
        x = flatten(x)  // -> [N, 25088]
        // Dropout comes here in training and is the identity at inference.
        x = fc(x)  // -> [N, 512]
        x = features(x)  // BatchNorm1d
        return x
    }
}
