// 2-D convolution as im2col + GEMM, or Winograd F(2x2, 3x3) + GEMMs for 3x3 kernels with stride 1.

/// A 2-D convolution with a square kernel, zero padding, no groups and no dilation
/// (PyTorch `Conv2d`, ONNX `Conv`):
///
///     y[n, o, oy, ox] = bias[o] + sum over c, ky, kx of
///                       weight[o, c, ky, kx] * x[n, c, oy*stride - padding + ky, ox*stride - padding + kx]
///
/// with x read as 0 outside the image. Input [N, inChannels, H, W], output
/// [N, outChannels, Ho, Wo] with Ho = (H + 2*padding - kernelSize) / stride + 1.
struct Conv2D: Sendable {
    let inChannels: Int
    let outChannels: Int
    let kernelSize: Int
    let stride: Int
    let padding: Int
    /// [outChannels, inChannels, kernelSize, kernelSize], which is also the row-major GEMM
    /// operand [outChannels, inChannels * kernelSize * kernelSize]. Empty when the convolution
    /// runs as Winograd, which reads only `winogradWeight`, so the model does not hold both.
    let weight: [Float]
    /// [outChannels], present when a following batch norm was folded into this convolution.
    let bias: [Float]?
    /// The kernels transformed for Winograd F(2x2, 3x3), [16, outChannels, inChannels], when
    /// this convolution runs that way: a 3x3 kernel, stride 1 and `.winograd` requested.
    let winogradWeight: [Float]?

    /// Creates the convolution. `algorithm` applies to a 3x3 kernel with stride 1 only, and
    /// every other convolution runs as im2col and GEMM.
    init(
        inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        weight: [Float], bias: [Float]? = nil, algorithm: ConvolutionAlgorithm = .winograd
    ) {
        precondition(weight.count == outChannels * inChannels * kernelSize * kernelSize,
            "Conv2D: \(weight.count) weights for [\(outChannels), \(inChannels), \(kernelSize), \(kernelSize)]")
        precondition(bias == nil || bias!.count == outChannels, "Conv2D: bias size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.bias = bias
        if algorithm == .winograd && kernelSize == 3 && stride == 1 {
            winogradWeight = winogradTransformWeights(weight, outChannels: outChannels, inChannels: inChannels)
            self.weight = []
        } else {
            winogradWeight = nil
            self.weight = weight
        }
    }

    func callAsFunction(_ x: borrowing FeatureMap) -> FeatureMap {
        precondition(x.channels == inChannels, "Conv2D: input has \(x.channels) channels, expected \(inChannels)")
        let geometry = ConvolutionGeometry(
            inChannels: inChannels, height: x.height, width: x.width,
            kernelSize: kernelSize, stride: stride, padding: padding)
        let planeSize = geometry.outputPlaneSize
        if let winogradWeight {
            return convolveWinograd(x, transformedWeight: winogradWeight)
        }
        var output = FeatureMap(
            batch: x.batch, channels: outChannels,
            height: geometry.outputHeight, width: geometry.outputWidth,
            values: uninitializedFloats(count: x.batch * outChannels * planeSize))

        if kernelSize == 1 && stride == 1 && padding == 0 {
            // A 1x1 convolution with stride 1 and no padding is a plain GEMM: its column matrix
            // [C, H*W] would be a copy of the image, so the image is multiplied directly.
            for n in 0..<x.batch {
                sgemm(
                    m: outChannels, n: planeSize, k: inChannels,
                    a: weight, lda: inChannels,
                    b: x.values, bOffset: n * x.imageSize, ldb: planeSize,
                    c: &output.values, cOffset: n * output.imageSize, ldc: planeSize)
            }
        } else {
            convolveWithColumns(x, geometry: geometry, into: &output)
        }

        if let bias {
            addBiasChannels(&output.values, channels: outChannels, planeSize: planeSize, bias: bias)
        }
        return output
    }

    /// Convolves each image by im2col into a column matrix and one GEMM.
    ///
    /// This runs one GEMM per image, not one over the batch. Placing several images' columns
    /// side by side widens the narrow GEMMs of the 14x14 and 7x7 stages, but it did not pay:
    /// on a 2-core AMD EPYC (Zen 4) with OpenBLAS 0.3.21 and 2 threads, r100 at batch 8 took
    /// about 173 ms per face either way, within the run-to-run noise of about 5%.
    private func convolveWithColumns(
        _ x: borrowing FeatureMap, geometry: ConvolutionGeometry, into output: inout FeatureMap
    ) {
        let planeSize = geometry.outputPlaneSize
        let rows = geometry.columnRows
        var columns = uninitializedFloats(count: rows * planeSize)
        for n in 0..<x.batch {
            im2col(
                input: x.values, inputOffset: n * x.imageSize, geometry: geometry,
                columns: &columns, rowStride: planeSize)
            // The GEMM writes [outChannels, Ho*Wo], which is the image's place in NCHW.
            sgemm(
                m: outChannels, n: planeSize, k: rows,
                a: weight, lda: rows, b: columns, ldb: planeSize,
                c: &output.values, cOffset: n * output.imageSize, ldc: planeSize)
        }
    }

    /// Convolves each image by Winograd F(2x2, 3x3): input tiles transformed, 16 GEMMs of
    /// [outChannels, inChannels] x [inChannels, tiles], output tiles transformed with the
    /// bias added.
    ///
    /// Like the im2col path it runs per image, so an image's result does not depend on the
    /// rest of the batch.
    private func convolveWinograd(_ x: borrowing FeatureMap, transformedWeight: [Float]) -> FeatureMap {
        let tiling = WinogradTiling(height: x.height, width: x.width, padding: padding)
        let tiles = tiling.tileCount
        let positions = WinogradTiling.positions
        var output = FeatureMap(
            batch: x.batch, channels: outChannels,
            height: tiling.outputHeight, width: tiling.outputWidth,
            values: uninitializedFloats(count: x.batch * outChannels * tiling.outputHeight * tiling.outputWidth))
        var transformedInput = uninitializedFloats(count: positions * inChannels * tiles)
        var products = uninitializedFloats(count: positions * outChannels * tiles)
        // The transforms split their channels over as many threads as OpenBLAS uses.
        let workers = OpenBLAS.threadCount
        for n in 0..<x.batch {
            winogradTransformInput(
                x.values, inputOffset: n * x.imageSize, channels: inChannels, tiling: tiling,
                into: &transformedInput, workers: workers)
            for position in 0..<positions {
                sgemm(
                    m: outChannels, n: tiles, k: inChannels,
                    a: transformedWeight, aOffset: position * outChannels * inChannels, lda: inChannels,
                    b: transformedInput, bOffset: position * inChannels * tiles, ldb: tiles,
                    c: &products, cOffset: position * outChannels * tiles, ldc: tiles)
            }
            winogradTransformOutput(
                products, outChannels: outChannels, tiling: tiling, bias: bias,
                into: &output.values, outputOffset: n * output.imageSize, workers: workers)
        }
        return output
    }
}
