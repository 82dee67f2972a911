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
    /// every other convolution runs as im2col and GEMM. The Winograd weight transform runs on
    /// up to `workers` threads.
    init(
        inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        weight: [Float], bias: [Float]? = nil, algorithm: ConvolutionAlgorithm = .winograd,
        workers: Int = 1
    ) {
        self = weight.withUnsafeBufferPointer { weightBuffer in
            Conv2D(
                inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                padding: padding, weights: weightBuffer, bias: bias, algorithm: algorithm, workers: workers)
        }
    }

    /// Creates the convolution from weights in memory it does not own, such as a loaded weight
    /// file: the Winograd path reads them once to transform them, so they are never copied
    /// into an array of their own; the other paths copy them.
    init(
        inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        weights weight: UnsafeBufferPointer<Float>, bias: [Float]? = nil,
        algorithm: ConvolutionAlgorithm = .winograd, workers: Int = 1
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
            winogradWeight = winogradTransformWeights(
                weight, outChannels: outChannels, inChannels: inChannels, workers: workers)
            self.weight = []
        } else {
            winogradWeight = nil
            self.weight = Array(weight)
        }
    }

    /// Convolves `x` on the calling thread, with no fused layers (for tests of the layer alone).
    func callAsFunction(_ x: borrowing FeatureMap) -> FeatureMap {
        forward(x, context: InferenceContext(workers: 1))
    }

    /// Convolves `x`, splitting the work over `context.workers` threads, and applies the layers
    /// in `fusion` on the way in and out. The output buffer comes from `context`'s pool.
    ///
    /// The split never changes a result: the Winograd path runs its 16 GEMMs whole, one per
    /// thread at a time, and the im2col path splits its GEMM into blocks that depend on the
    /// shape only (`gemmBlocks`). Images are convolved one at a time with the same calls, so an
    /// image's output is the same bits alone or in any batch, with any thread count.
    func forward(
        _ x: borrowing FeatureMap, context: InferenceContext, fusion: ConvolutionFusion = ConvolutionFusion()
    ) -> FeatureMap {
        precondition(x.channels == inChannels, "Conv2D: input has \(x.channels) channels, expected \(inChannels)")
        fusion.check(inChannels: inChannels, outChannels: outChannels)
        if let winogradWeight {
            return convolveWinograd(x, transformedWeight: winogradWeight, context: context, fusion: fusion)
        }
        let geometry = ConvolutionGeometry(
            inChannels: inChannels, height: x.height, width: x.width,
            kernelSize: kernelSize, stride: stride, padding: padding)
        var output = FeatureMap(
            batch: x.batch, channels: outChannels,
            height: geometry.outputHeight, width: geometry.outputWidth,
            values: context.takeBuffer(count: x.batch * outChannels * geometry.outputPlaneSize))
        precondition(fusion.residual == nil || fusion.residual!.count == output.values.count,
            "Conv2D: residual of \(fusion.residual!.count) values for output \(output.shape)")
        if let norm = fusion.inputNorm {
            // Only the `.plain` path gets here with an input norm (IBasicBlock's conv1 is 3x3
            // with stride 1), so it is a separate pass rather than part of im2col.
            var normalized = FeatureMap(
                batch: x.batch, channels: x.channels, height: x.height, width: x.width,
                values: context.takeBuffer(count: x.values.count))
            normalized.values.withUnsafeMutableBufferPointer { destination in
                _ = destination.update(fromContentsOf: x.values)
            }
            scaleShiftChannels(
                &normalized.values, channels: inChannels, planeSize: x.planeSize,
                scale: norm.scale, shift: norm.shift)
            convolveWithColumns(normalized, geometry: geometry, into: &output, context: context, fusion: fusion)
            context.recycle(normalized.values)
        } else {
            convolveWithColumns(x, geometry: geometry, into: &output, context: context, fusion: fusion)
        }
        return output
    }

    /// Convolves each image by im2col into a column matrix and one GEMM, split into blocks over
    /// the threads, then adds the bias and runs the fused layers per channel plane.
    ///
    /// A 1x1 convolution with stride 1 and no padding skips im2col: its column matrix
    /// [C, H*W] would be a copy of the image, so the image is multiplied directly.
    ///
    /// This runs one GEMM per image, not one over the batch. Placing several images' columns
    /// side by side widens the narrow GEMMs of the 14x14 and 7x7 stages, but it did not pay:
    /// on a 2-core AMD EPYC (Zen 4) with OpenBLAS 0.3.21 and 2 threads, r100 at batch 8 took
    /// about 173 ms per face either way, within the run-to-run noise of about 5%.
    private func convolveWithColumns(
        _ x: borrowing FeatureMap, geometry: ConvolutionGeometry, into output: inout FeatureMap,
        context: InferenceContext, fusion: ConvolutionFusion
    ) {
        let planeSize = geometry.outputPlaneSize
        let rows = geometry.columnRows
        let direct = kernelSize == 1 && stride == 1 && padding == 0
        var columns = direct ? [] : context.takeBuffer(count: rows * planeSize)
        let blocks = gemmBlocks(m: outChannels, n: planeSize)
        let workers = context.workers
        let outputImageSize = output.imageSize
        let batch = x.batch
        for n in 0..<batch {
            if !direct {
                im2col(
                    input: x.values, inputOffset: n * x.imageSize, geometry: geometry,
                    columns: &columns, rowStride: planeSize)
            }
            // The GEMM writes [outChannels, Ho*Wo], which is the image's place in NCHW. Each
            // block is C[rows, columns] = weight[rows, :] x B[:, columns].
            let source = direct ? x.values : columns
            let bOffset = direct ? n * x.imageSize : 0
            weight.withUnsafeBufferPointer { weight in
                source.withUnsafeBufferPointer { source in
                    output.values.withUnsafeMutableBufferPointer { outputBuffer in
                        let a = weight.baseAddress!
                        let b = source.baseAddress! + bOffset
                        let c = outputBuffer.baseAddress! + n * outputImageSize
                        forEachIndex(count: blocks.count, workers: workers) { index in
                            let block = blocks[index]
                            sgemm(
                                m: block.rows.count, n: block.columns.count, k: rows,
                                a: a + block.rows.lowerBound * rows, lda: rows,
                                b: b + block.columns.lowerBound, ldb: planeSize,
                                c: c + block.rows.lowerBound * planeSize + block.columns.lowerBound,
                                ldc: planeSize)
                        }
                    }
                }
            }
        }
        if !direct {
            context.recycle(columns)
        }
        // Bias and fused layers, per channel plane, as addBiasChannels and the layers compute them.
        fusion.withEpilogue { epilogueAt in
            withOptionalPointer(bias) { bias in
                output.values.withUnsafeMutableBufferPointer { outputBuffer in
                    let base = outputBuffer.baseAddress!
                    let planes = batch * outChannels
                    forEachRange(count: planes, workers: workers) { range in
                        for p in range {
                            let (image, channel) = p.quotientAndRemainder(dividingBy: outChannels)
                            let plane = base + p * planeSize
                            if let bias {
                                let value = bias[channel]
                                for i in 0..<planeSize {
                                    plane[i] += value
                                }
                            }
                            epilogueAt(image * outputImageSize).apply(to: plane, count: planeSize, channel: channel)
                        }
                    }
                }
            }
        }
    }

    /// Convolves the batch by Winograd F(2x2, 3x3): input tiles transformed (with the fused
    /// input norm), 16 GEMMs of [outChannels, inChannels] x [inChannels, tiles] per image,
    /// output tiles transformed with the bias added and the fused layers applied.
    ///
    /// Like the im2col path it runs one image at a time (see the comment on `group`), so an
    /// image's result does not depend on the rest of the batch (asserted by ThreadingTests and
    /// the parity tests).
    ///
    /// The transforms split (image, channel) pairs over the threads, and each GEMM is split
    /// into row blocks whose size does not depend on the thread count, so the thread count
    /// changes no bit either.
    private func convolveWinograd(
        _ x: borrowing FeatureMap, transformedWeight: [Float], context: InferenceContext,
        fusion: ConvolutionFusion
    ) -> FeatureMap {
        let tiling = WinogradTiling(height: x.height, width: x.width, padding: padding)
        let tiles = tiling.tileCount
        let positions = WinogradTiling.positions
        let batch = x.batch
        // One image per GEMM. Placing several images' tiles side by side in one GEMM per position
        // lets OpenBLAS pack each transformed weight matrix once per group instead of once per
        // image, and on r100 it kept every image's bits. But OpenBLAS 0.3.21 switches to
        // another kernel for products under about 10^6 multiply-adds, and for r18-sized test
        // graphs a wider product crossed that line: batch 7 and 12 changed rows against batch 1
        // in their last bits. The kernels accept a group (`columns` >= tiles) so that the choice
        // stays a one-line change.
        let group = 1
        let columns = group * tiles
        var output = FeatureMap(
            batch: batch, channels: outChannels,
            height: tiling.outputHeight, width: tiling.outputWidth,
            values: context.takeBuffer(count: batch * outChannels * tiling.outputHeight * tiling.outputWidth))
        precondition(fusion.residual == nil || fusion.residual!.count == output.values.count,
            "Conv2D: residual of \(fusion.residual!.count) values for output \(output.shape)")
        var transformedInput = context.takeBuffer(count: positions * inChannels * columns)
        var products = context.takeBuffer(count: positions * outChannels * columns)
        let workers = context.workers
        let inChannels = inChannels
        let outChannels = outChannels
        let inputImageSize = x.imageSize
        let outputImageSize = output.imageSize
        // Every pointer below stays inside its buffer: input image n is inputImageSize floats at
        // n * inputImageSize, output image n is outputImageSize floats at n * outputImageSize,
        // and the transformed input and the products are [16, channels, columns] blocks in
        // which the group's image g owns columns g * tiles ..< (g + 1) * tiles.
        fusion.withEpilogue { epilogueAt in
            fusion.withInputNormalization { normalization in
                withOptionalPointer(bias) { bias in
                    x.values.withUnsafeBufferPointer { input in
                        transformedWeight.withUnsafeBufferPointer { weight in
                            transformedInput.withUnsafeMutableBufferPointer { transformed in
                                products.withUnsafeMutableBufferPointer { productBuffer in
                                    output.values.withUnsafeMutableBufferPointer { outputBuffer in
                                        let u = weight.baseAddress!
                                        let v = transformed.baseAddress!
                                        let m = productBuffer.baseAddress!
                                        for first in Swift.stride(from: 0, to: batch, by: group) {
                                            let count = min(group, batch - first)
                                            let width = count * tiles
                                            forEachImageChannel(batch: count, channels: inChannels, workers: workers) {
                                                g, range in
                                                winogradTransformInput(
                                                    source: input.baseAddress! + (first + g) * inputImageSize,
                                                    channels: range, channelCount: inChannels, tiling: tiling,
                                                    normalization: normalization, into: v + g * tiles, columns: columns)
                                            }
                                            // Each position's product in row blocks sized for
                                            // OpenBLAS's small-matrix kernel. The (position,
                                            // block) pairs are shared out over the threads.
                                            let rowBlock = smallKernelRowBlock(m: outChannels, n: width, k: inChannels)
                                            let blocks = (outChannels + rowBlock - 1) / rowBlock
                                            forEachIndex(count: positions * blocks, workers: workers) { index in
                                                let (position, block) = index.quotientAndRemainder(dividingBy: blocks)
                                                let firstRow = block * rowBlock
                                                let rows = min(rowBlock, outChannels - firstRow)
                                                sgemm(
                                                    m: rows, n: width, k: inChannels,
                                                    a: u + (position * outChannels + firstRow) * inChannels, lda: inChannels,
                                                    b: v + position * inChannels * columns, ldb: columns,
                                                    c: m + (position * outChannels + firstRow) * columns, ldc: columns)
                                            }
                                            forEachImageChannel(batch: count, channels: outChannels, workers: workers) {
                                                g, range in
                                                let n = first + g
                                                winogradTransformOutput(
                                                    products: m + g * tiles, channels: range, channelCount: outChannels,
                                                    columns: columns, tiling: tiling, bias: bias,
                                                    epilogue: epilogueAt(n * outputImageSize),
                                                    into: outputBuffer.baseAddress! + n * outputImageSize)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        context.recycle(transformedInput)
        context.recycle(products)
        return output
    }
}

/// Splits the `batch * channels` (image, channel) pairs over up to `workers` threads and calls
/// `body(image, channelRange)` for the channels of each image in each thread's share.
private func forEachImageChannel(
    batch: Int, channels: Int, workers: Int, _ body: (Int, Range<Int>) -> Void
) {
    forEachRange(count: batch * channels, workers: workers) { range in
        var index = range.lowerBound
        while index < range.upperBound {
            let (image, channel) = index.quotientAndRemainder(dividingBy: channels)
            let end = min(range.upperBound, (image + 1) * channels)
            body(image, channel..<(channel + end - index))
            index = end
        }
    }
}

/// Layers fused into a convolution: a batch norm on its input (before the zero padding, as
/// IBasicBlock's bn1), and after it an unfolded batch norm, PReLU and a residual addition, in
/// that order (see `ChannelEpilogue`). Each gives the same bits as the layer run alone.
struct ConvolutionFusion {
    var inputNorm: BatchNorm? = nil
    var outputNorm: BatchNorm? = nil
    var prelu: PReLU? = nil
    /// A feature map with the output's shape, added to the output.
    var residual: [Float]? = nil

    func check(inChannels: Int, outChannels: Int) {
        precondition(inputNorm == nil || inputNorm!.channels == inChannels, "fused input norm channels")
        precondition(outputNorm == nil || outputNorm!.channels == outChannels, "fused output norm channels")
        precondition(prelu == nil || prelu!.channels == outChannels, "fused PReLU channels")
    }

    /// Calls `body` with the input norm as pointers, or nil.
    func withInputNormalization<R>(_ body: (ChannelAffine?) -> R) -> R {
        guard let inputNorm else { return body(nil) }
        return inputNorm.scale.withUnsafeBufferPointer { scale in
            inputNorm.shift.withUnsafeBufferPointer { shift in
                body(ChannelAffine(scale: scale.baseAddress!, shift: shift.baseAddress!))
            }
        }
    }

    /// Calls `body` with a function that returns the epilogue for the output image starting at
    /// a given offset (the residual is read at the same offset). The caller checks that the
    /// residual has the output's size.
    func withEpilogue<R>(_ body: ((Int) -> ChannelEpilogue) -> R) -> R {
        withOptionalPointer(outputNorm?.scale) { scale in
            withOptionalPointer(outputNorm?.shift) { shift in
                withOptionalPointer(prelu?.slope) { slope in
                    withOptionalPointer(residual) { residual in
                        let normalization = scale.map { ChannelAffine(scale: $0, shift: shift!) }
                        return body { offset in
                            ChannelEpilogue(
                                normalization: normalization, slope: slope, residual: residual.map { $0 + offset })
                        }
                    }
                }
            }
        }
    }
}
