// Fully connected (linear) layer.

/// A linear layer (PyTorch `Linear`, ONNX `Gemm` with transB = 1):
///
///     y[n, o] = bias[o] + sum over i of weight[o, i] * x[n, i]
///
/// Input [N, inFeatures] (a flattened feature map), weight [outFeatures, inFeatures], output
/// [N, outFeatures]. One GEMM per image, y[n] = x[n] weight^T, rather than one for the batch:
/// OpenBLAS 0.3.21 sums in another order for some batch sizes (measured: batch 5 and 12 moved
/// r18 outputs by up to 1.7e-6 against batch 1), and per-image products keep every image's
/// embedding the same bits whatever batch it arrives in. The cost is reading the weight once
/// per image instead of once per batch (25088 x 512 floats, about 51 MB, for r100).
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
        for image in 0..<x.batch {
            sgemm(
                transposeB: true, m: 1, n: outFeatures, k: inFeatures,
                a: x.values, aOffset: image * inFeatures, lda: inFeatures,
                b: weight, ldb: inFeatures,
                c: &y.values, cOffset: image * outFeatures, ldc: outFeatures)
        }
        addBiasChannels(&y.values, channels: outFeatures, planeSize: 1, bias: bias)
        return y
    }
}
