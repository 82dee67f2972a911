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

    /// Applies the layer on the calling thread (for tests of the layer alone).
    func callAsFunction(_ x: borrowing FeatureMap) -> FeatureMap {
        forward(x, context: InferenceContext(workers: 1))
    }

    /// Applies the layer with the output features split into blocks over `context.workers`
    /// threads. The blocks depend on `outFeatures` only (see `gemmBlocks`), so every image's
    /// output is the same bits with any thread count.
    func forward(_ x: borrowing FeatureMap, context: InferenceContext) -> FeatureMap {
        precondition(x.imageSize == inFeatures && x.planeSize == 1,
            "FullyConnected: input \(x.shape), expected [N, \(inFeatures), 1, 1]")
        var y = FeatureMap(
            batch: x.batch, channels: outFeatures, height: 1, width: 1,
            values: uninitializedFloats(count: x.batch * outFeatures))
        // y[n] = x[n] weight^T is C [1, outFeatures]: too narrow in m for row blocks, so the
        // blocks split its columns, which are rows of the weight.
        let blocks = gemmBlocks(m: 1, n: outFeatures, columnBlock: 128)
        let inFeatures = inFeatures
        let outFeatures = outFeatures
        let batch = x.batch
        x.values.withUnsafeBufferPointer { input in
            weight.withUnsafeBufferPointer { weight in
                y.values.withUnsafeMutableBufferPointer { output in
                    for image in 0..<batch {
                        let a = input.baseAddress! + image * inFeatures
                        let c = output.baseAddress! + image * outFeatures
                        forEachIndex(count: blocks.count, workers: context.workers) { index in
                            let columns = blocks[index].columns
                            sgemm(
                                transposeB: true, m: 1, n: columns.count, k: inFeatures,
                                a: a, lda: inFeatures,
                                b: weight.baseAddress! + columns.lowerBound * inFeatures, ldb: inFeatures,
                                c: c + columns.lowerBound, ldc: outFeatures)
                        }
                    }
                }
            }
        }
        addBiasChannels(&y.values, channels: outFeatures, planeSize: 1, bias: bias)
        return y
    }
}
