import Dispatch

// Winograd F(2x2, 3x3): a 3x3 convolution with stride 1 computed on 4x4 input tiles that
// overlap by 2, each giving a 2x2 output tile, with 16 multiplies per tile and channel
// pair instead of the 36 of the direct method (Lavin & Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks", section 4.1). For one channel pair, with d a 4x4 input
// tile and g the 3x3 kernel:
//
//     Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A
//
//     B^T = | 1  0 -1  0 |     G = |  1    0    0  |     A^T = | 1  1  1  0 |
//           | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
//           | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
//           | 0  1  0 -1 |         |  0    0    1  |
//
// The sum over input channels of the element-wise products is, for each of the 16 tile
// positions ξ, a matrix product: M[ξ] [Cout, tiles] = U[ξ] [Cout, Cin] x V[ξ] [Cin, tiles],
// with U = G g G^T (transformed once, at load) and V = B^T d B. Those 16 products run in sgemm.
//
// The transforms change the rounding of the result, not its value: the tests compare it with
// the direct convolution and with the im2col path.

/// The tiling of one image for a 3x3, stride-1 Winograd F(2x2, 3x3) convolution with zero
/// padding `padding` on every side.
struct WinogradTiling: Equatable {
    /// Input tile edge: 2 outputs + 3 - 1.
    static let inputTile = 4
    /// Output tile edge.
    static let outputTile = 2
    /// Tile positions, one matrix product each: 4 x 4.
    static let positions = 16

    var height: Int
    var width: Int
    var padding: Int

    init(height: Int, width: Int, padding: Int) {
        precondition(height >= 1 && width >= 1 && padding >= 0, "invalid Winograd tiling input")
        precondition(height + 2 * padding >= 3 && width + 2 * padding >= 3,
            "3x3 kernel larger than padded input \(height)x\(width) + \(padding)")
        self.height = height
        self.width = width
        self.padding = padding
    }

    /// Ho = H + 2p - 2, the output of a 3x3 kernel with stride 1.
    var outputHeight: Int { height + 2 * padding - 2 }
    var outputWidth: Int { width + 2 * padding - 2 }
    /// ceil(Ho / 2): the last tile row is partly outside the output when Ho is odd.
    var tileRows: Int { (outputHeight + 1) / 2 }
    var tileColumns: Int { (outputWidth + 1) / 2 }
    var tileCount: Int { tileRows * tileColumns }
}

/// Transforms 3x3 kernels [outChannels, inChannels, 3, 3] into U = G g G^T, laid out as
/// [16, outChannels, inChannels], so that U[ξ] is the row-major A operand of the product for
/// tile position ξ = 4 * row + column. Runs in Double and rounds once.
func winogradTransformWeights(_ weight: [Float], outChannels: Int, inChannels: Int) -> [Float] {
    precondition(weight.count == outChannels * inChannels * 9,
        "Winograd: \(weight.count) weights for [\(outChannels), \(inChannels), 3, 3]")
    let pairs = outChannels * inChannels
    var transformed = [Float](repeating: 0, count: WinogradTiling.positions * pairs)
    // G v for a 3-vector v: [v0, (v0 + v1 + v2) / 2, (v0 - v1 + v2) / 2, v2].
    func applyG(_ k0: Double, _ k1: Double, _ k2: Double) -> SIMD4<Double> {
        SIMD4(k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2)
    }
    weight.withUnsafeBufferPointer { weight in
        for pair in 0..<pairs {
            let k = weight.baseAddress! + pair * 9
            // Columns of G k ([4, 3]), from the kernel's rows k[0...2], k[3...5], k[6...8].
            let column0 = applyG(Double(k[0]), Double(k[3]), Double(k[6]))
            let column1 = applyG(Double(k[1]), Double(k[4]), Double(k[7]))
            let column2 = applyG(Double(k[2]), Double(k[5]), Double(k[8]))
            // (G k) G^T: row i of the result is G applied to row i of G k.
            for i in 0..<4 {
                let row = applyG(column0[i], column1[i], column2[i])
                for j in 0..<4 {
                    transformed[(i * 4 + j) * pairs + pair] = Float(row[j])
                }
            }
        }
    }
    return transformed
}

/// Transforms every 4x4 input tile d of one [C, H, W] image into V = B^T d B.
///
/// Reads `input[inputOffset ..< inputOffset + C*H*W]`, with values outside the image read as
/// 0 (zero padding). Writes V as [16, C, tiles] into `transformed[0 ..< 16*C*tiles]`: V[ξ] is
/// the row-major B operand [C, tiles] of the product for tile position ξ. Tile t = ty *
/// tileColumns + tx starts at input row 2*ty - padding and column 2*tx - padding. The
/// channels are split over up to `workers` threads.
func winogradTransformInput(
    _ input: [Float], inputOffset: Int = 0, channels: Int, tiling: WinogradTiling,
    into transformed: inout [Float], workers: Int = 1
) {
    let tiles = tiling.tileCount
    let planeSize = tiling.height * tiling.width
    precondition(channels >= 1, "Winograd: no input channels")
    precondition(inputOffset >= 0 && inputOffset + channels * planeSize <= input.count,
        "Winograd: input image exceeds the input buffer")
    precondition(transformed.count >= WinogradTiling.positions * channels * tiles,
        "Winograd: \(transformed.count) floats for [16, \(channels), \(tiles)] transformed tiles")

    // Invariant for the pointer code below: reads use channel < C, 0 <= y < H and
    // 0 <= x < W only (the bounds test in `load` guards every read), and writes use
    // ξ < 16, channel < C and t < tiles, inside the buffer by the preconditions above.
    let height = tiling.height
    let width = tiling.width
    let positionStride = channels * tiles
    input.withUnsafeBufferPointer { inputBuffer in
        transformed.withUnsafeMutableBufferPointer { outputBuffer in
            let source = inputBuffer.baseAddress! + inputOffset
            let destination = outputBuffer.baseAddress!
            forEachRange(count: channels, workers: workers) { channelRange in
                for channel in channelRange {
                    let plane = source + channel * planeSize
                    let channelStart = destination + channel * tiles
                    for ty in 0..<tiling.tileRows {
                        let y0 = 2 * ty - tiling.padding
                        for tx in 0..<tiling.tileColumns {
                            let x0 = 2 * tx - tiling.padding
                            let interior = y0 >= 0 && y0 + 4 <= height && x0 >= 0 && x0 + 4 <= width
                            func load(_ row: Int) -> SIMD4<Float> {
                                let y = y0 + row
                                if interior {
                                    let p = plane + y * width + x0
                                    return SIMD4(p[0], p[1], p[2], p[3])
                                }
                                var v = SIMD4<Float>()
                                guard y >= 0 && y < height else { return v }
                                for j in 0..<4 where x0 + j >= 0 && x0 + j < width {
                                    v[j] = plane[y * width + x0 + j]
                                }
                                return v
                            }
                            let d0 = load(0)
                            let d1 = load(1)
                            let d2 = load(2)
                            let d3 = load(3)
                            // (B^T d) B: the same combination of the columns of each row r of
                            // B^T d, stored at positions 4i ..< 4i + 4.
                            let t = ty * tiling.tileColumns + tx
                            func store(_ r: SIMD4<Float>, row i: Int) {
                                let p = channelStart + t + i * 4 * positionStride
                                p[0] = r[0] - r[2]
                                p[positionStride] = r[1] + r[2]
                                p[2 * positionStride] = r[2] - r[1]
                                p[3 * positionStride] = r[1] - r[3]
                            }
                            // B^T d: combine rows.
                            store(d0 - d2, row: 0)
                            store(d1 + d2, row: 1)
                            store(d2 - d1, row: 2)
                            store(d1 - d3, row: 3)
                        }
                    }
                }
            }
        }
    }
}

/// Turns the 16 products M[ξ] [Cout, tiles] into output tiles Y = A^T m A, adds `bias[o]`
/// when given, and writes one [Cout, Ho, Wo] image.
///
/// Reads `products[0 ..< 16*Cout*tiles]` as [16, Cout, tiles]. Writes
/// `output[outputOffset ..< outputOffset + Cout*Ho*Wo]`, dropping the tile outputs beyond Ho
/// or Wo when they are odd. The output channels are split over up to `workers` threads.
func winogradTransformOutput(
    _ products: [Float], outChannels: Int, tiling: WinogradTiling, bias: [Float]?,
    into output: inout [Float], outputOffset: Int = 0, workers: Int = 1
) {
    let tiles = tiling.tileCount
    let outputHeight = tiling.outputHeight
    let outputWidth = tiling.outputWidth
    let planeSize = outputHeight * outputWidth
    precondition(products.count >= WinogradTiling.positions * outChannels * tiles,
        "Winograd: \(products.count) floats for [16, \(outChannels), \(tiles)] products")
    precondition(outputOffset >= 0 && outputOffset + outChannels * planeSize <= output.count,
        "Winograd: output image exceeds the output buffer")
    precondition(bias == nil || bias!.count == outChannels, "Winograd: bias size")

    // Invariant for the pointer code below: reads use ξ < 16, o < Cout and t < tiles, and
    // writes use o < Cout, y < Ho and x < Wo (tested per element at the edge tiles), all
    // inside the buffers by the preconditions above.
    let positionStride = outChannels * tiles
    products.withUnsafeBufferPointer { productBuffer in
        output.withUnsafeMutableBufferPointer { outputBuffer in
            let source = productBuffer.baseAddress!
            let destination = outputBuffer.baseAddress! + outputOffset
            forEachRange(count: outChannels, workers: workers) { channelRange in
                for o in channelRange {
                    let b = bias?[o] ?? 0
                    let plane = destination + o * planeSize
                    let channelStart = source + o * tiles
                    for ty in 0..<tiling.tileRows {
                        for tx in 0..<tiling.tileColumns {
                            let t = ty * tiling.tileColumns + tx
                            func load(_ row: Int) -> SIMD4<Float> {
                                let p = channelStart + t + row * 4 * positionStride
                                return SIMD4(p[0], p[positionStride], p[2 * positionStride], p[3 * positionStride])
                            }
                            let m0 = load(0)
                            let m1 = load(1)
                            let m2 = load(2)
                            let m3 = load(3)
                            // A^T m: combine rows.
                            let s0 = m0 + m1 + m2
                            let s1 = m1 - m2 - m3
                            // (A^T m) A: combine the columns of each row.
                            let y00 = s0[0] + s0[1] + s0[2] + b
                            let y01 = s0[1] - s0[2] - s0[3] + b
                            let y10 = s1[0] + s1[1] + s1[2] + b
                            let y11 = s1[1] - s1[2] - s1[3] + b

                            let y = 2 * ty
                            let x = 2 * tx
                            let row0 = plane + y * outputWidth + x
                            row0[0] = y00
                            let hasSecondColumn = x + 1 < outputWidth
                            if hasSecondColumn {
                                row0[1] = y01
                            }
                            if y + 1 < outputHeight {
                                let row1 = row0 + outputWidth
                                row1[0] = y10
                                if hasSecondColumn {
                                    row1[1] = y11
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Calls `body` on `0..<count` split into up to `workers` contiguous ranges, on as many
/// threads at once. The transforms compute every channel the same way on any thread, so the
/// split does not change their results.
///
/// `body` may write through pointers: that is safe here because the calls get disjoint ranges
/// and each transform writes only the channels of its range.
private func forEachRange(count: Int, workers: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(workers, count))
    if parts == 1 {
        body(0..<count)
        return
    }
    // The wrapper lets the pointer-capturing closure cross threads, by the statement above.
    struct Work: @unchecked Sendable {
        let body: (Range<Int>) -> Void
    }
    withoutActuallyEscaping(body) { body in
        let work = Work(body: body)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            work.body((part * count / parts)..<((part + 1) * count / parts))
        }
    }
}
