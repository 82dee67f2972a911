// Fully connected (linear) layer.

/// A linear layer (PyTorch `Linear`, ONNX `Gemm` with transB = 1):
///
///     y[n, o] = bias[o] + sum over i of weight[o, i] * x[n, i]
///
/// Input [N, inFeatures] (a flattened feature map), weight [outFeatures, inFeatures], output
/// [N, outFeatures]. One GEMM for the whole batch: y = x weight^T.
struct FullyConnected: Sendable {
    let inFeatures: Int
    let outFeatures: Int
    let weight: [Float]
    let bias: [Float]

    init(inFeatures: Int, outFeatures: Int, weight: [Float], bias: [Float]) {
        precondition(weight.count == outFeatures * inFeatures && bias.count == outFeatures,
            "FullyConnected: parameter sizes for [\(outFeatures), \(inFeatures)]")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = weight
        self.bias = bias
    }

    func callAsFunction(_ x: borrowing FeatureMap) -> FeatureMap {
        precondition(x.imageSize == inFeatures && x.planeSize == 1,
            "FullyConnected: input \(x.shape), expected [N, \(inFeatures), 1, 1]")
        var y = FeatureMap(
            batch: x.batch, channels: outFeatures, height: 1, width: 1,
            values: uninitializedFloats(count: x.batch * outFeatures))
        sgemm(
            transposeB: true, m: x.batch, n: outFeatures, k: inFeatures,
            a: x.values, lda: inFeatures, b: weight, ldb: inFeatures,
            c: &y.values, ldc: outFeatures)
        addBiasChannels(&y.values, channels: outFeatures, planeSize: 1, bias: bias)
        return y
    }
}
