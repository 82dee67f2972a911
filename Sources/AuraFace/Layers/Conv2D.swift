// 2-D convolution as im2col + GEMM.

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
    /// operand [outChannels, inChannels * kernelSize * kernelSize].
    let weight: [Float]
    /// [outChannels], present when a following batch norm was folded into this convolution.
    let bias: [Float]?

    init(
        inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        weight: [Float], bias: [Float]? = nil
    ) {
        precondition(weight.count == outChannels * inChannels * kernelSize * kernelSize,
            "Conv2D: \(weight.count) weights for [\(outChannels), \(inChannels), \(kernelSize), \(kernelSize)]")
        precondition(bias == nil || bias!.count == outChannels, "Conv2D: bias size")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.weight = weight
        self.bias = bias
    }

    func callAsFunction(_ x: borrowing FeatureMap) -> FeatureMap {
        precondition(x.channels == inChannels, "Conv2D: input has \(x.channels) channels, expected \(inChannels)")
        let geometry = ConvolutionGeometry(
            inChannels: inChannels, height: x.height, width: x.width,
            kernelSize: kernelSize, stride: stride, padding: padding)
        let planeSize = geometry.outputPlaneSize
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
}
