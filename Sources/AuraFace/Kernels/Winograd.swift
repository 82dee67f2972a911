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
/// tile position ξ = 4 * row + column. Runs in Double and rounds once, on up to `workers`
/// threads.
func winogradTransformWeights(_ weight: [Float], outChannels: Int, inChannels: Int, workers: Int = 1) -> [Float] {
    weight.withUnsafeBufferPointer { buffer in
        winogradTransformWeights(buffer, outChannels: outChannels, inChannels: inChannels, workers: workers)
    }
}

/// `winogradTransformWeights(_:outChannels:inChannels:workers:)` on weights in memory the
/// caller owns.
func winogradTransformWeights(
    _ weight: UnsafeBufferPointer<Float>, outChannels: Int, inChannels: Int, workers: Int = 1
) -> [Float] {
    precondition(weight.count == outChannels * inChannels * 9,
        "Winograd: \(weight.count) weights for [\(outChannels), \(inChannels), 3, 3]")
    let pairs = outChannels * inChannels
    guard pairs > 0 else { return [] }
    // Every element is written below: 16 per (output, input) channel pair.
    var transformed = uninitializedFloats(count: WinogradTiling.positions * pairs)
    // G v for a 3-vector v: [v0, (v0 + v1 + v2) / 2, (v0 - v1 + v2) / 2, v2].
    func applyG(_ k0: Double, _ k1: Double, _ k2: Double) -> SIMD4<Double> {
        SIMD4(k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2)
    }
    do {
        transformed.withUnsafeMutableBufferPointer { output in
            let source = weight.baseAddress!
            let destination = output.baseAddress!
            // Pairs are independent, so the split over threads changes no value. Reads stay
            // below pairs * 9 and writes below 16 * pairs, the two buffers' sizes.
            forEachRange(count: pairs, workers: workers) { range in
                // Four pairs at a time, one per SIMD lane: each lane gets exactly the Double
                // operations of the one-pair loop below, and the 16 stores become 4-wide.
                var pair = range.lowerBound
                while pair + 4 <= range.upperBound {
                    let k = source + pair * 9
                    func element(_ e: Int) -> SIMD4<Double> {
                        SIMD4(Double(k[e]), Double(k[9 + e]), Double(k[18 + e]), Double(k[27 + e]))
                    }
                    func g(_ k0: SIMD4<Double>, _ k1: SIMD4<Double>, _ k2: SIMD4<Double>)
                        -> (SIMD4<Double>, SIMD4<Double>, SIMD4<Double>, SIMD4<Double>)
                    {
                        (k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2)
                    }
                    let column0 = g(element(0), element(3), element(6))
                    let column1 = g(element(1), element(4), element(7))
                    let column2 = g(element(2), element(5), element(8))
                    func store(_ row: (SIMD4<Double>, SIMD4<Double>, SIMD4<Double>, SIMD4<Double>), _ i: Int) {
                        func put(_ value: SIMD4<Double>, _ j: Int) {
                            let p = UnsafeMutableRawPointer(destination + (i * 4 + j) * pairs + pair)
                            let rounded = SIMD4<Float>(Float(value[0]), Float(value[1]), Float(value[2]), Float(value[3]))
                            p.storeBytes(of: rounded, as: SIMD4<Float>.self)
                        }
                        put(row.0, 0)
                        put(row.1, 1)
                        put(row.2, 2)
                        put(row.3, 3)
                    }
                    store(g(column0.0, column1.0, column2.0), 0)
                    store(g(column0.1, column1.1, column2.1), 1)
                    store(g(column0.2, column1.2, column2.2), 2)
                    store(g(column0.3, column1.3, column2.3), 3)
                    pair += 4
                }
                for pair in pair..<range.upperBound {
                    let k = source + pair * 9
                    // Columns of G k ([4, 3]), from the kernel's rows k[0...2], k[3...5], k[6...8].
                    let column0 = applyG(Double(k[0]), Double(k[3]), Double(k[6]))
                    let column1 = applyG(Double(k[1]), Double(k[4]), Double(k[7]))
                    let column2 = applyG(Double(k[2]), Double(k[5]), Double(k[8]))
                    // (G k) G^T: row i of the result is G applied to row i of G k.
                    for i in 0..<4 {
                        let row = applyG(column0[i], column1[i], column2[i])
                        for j in 0..<4 {
                            destination[(i * 4 + j) * pairs + pair] = Float(row[j])
                        }
                    }
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
    input.withUnsafeBufferPointer { inputBuffer in
        transformed.withUnsafeMutableBufferPointer { outputBuffer in
            let source = inputBuffer.baseAddress! + inputOffset
            let destination = outputBuffer.baseAddress!
            forEachRange(count: channels, workers: workers) { channelRange in
                winogradTransformInput(
                    source: source, channels: channelRange, channelCount: channels, tiling: tiling,
                    normalization: nil, into: destination, columns: tiling.tileCount)
            }
        }
    }
}

/// A per-channel affine map y = x * scale[c] + shift[c] (an inference-mode batch norm), given
/// as pointers so that kernels can apply it while they read their input.
struct ChannelAffine {
    let scale: UnsafePointer<Float>
    let shift: UnsafePointer<Float>
}

/// The pointer kernel of the input transform, for the channels in `channels` of an image with
/// `channelCount` channels starting at `source`. The output block is [16, channelCount,
/// columns] with `columns` at least the image's tile count, so that the tiles of several
/// images can sit side by side in one GEMM operand; `destination` points at this image's first
/// column (position 0, channel 0). Only the rows of `channels` are written, and in them only
/// this image's `tiles` columns.
///
/// With `normalization`, each value read from the image is first mapped to x * scale[c] +
/// shift[c], computed as the batch norm layer computes it, while the zero padding stays 0.
/// That is the block-input batch norm of IBasicBlock, which comes before conv1's padding,
/// done here instead of in a separate pass over the activations, with the same bits.
///
/// It works on one row of tiles at a time, for all its tiles at once: the four input rows are
/// first split into their even and odd columns (zero outside the image), so that element j of
/// tile tx's row is even[tx], odd[tx], even[tx + 1], odd[tx + 1] for j = 0...3, and the
/// transform then runs on 8 tiles per SIMD vector, with contiguous loads and stores. Each
/// value gets the same operations in the same order as in the formula, tile by tile.
///
/// The caller guarantees that `source` holds channelCount * H * W floats and that
/// `destination` + (15 * channelCount + channelCount - 1) * columns + tiles stays inside the
/// output block. Reads use channel < channelCount, 0 <= y < H and 0 <= x < W only (tested per
/// element while splitting the rows).
func winogradTransformInput(
    source: UnsafePointer<Float>, channels: Range<Int>, channelCount: Int, tiling: WinogradTiling,
    normalization: ChannelAffine?, into destination: UnsafeMutablePointer<Float>, columns: Int
) {
    let height = tiling.height
    let width = tiling.width
    let planeSize = height * width
    precondition(columns >= tiling.tileCount, "Winograd: \(columns) columns for \(tiling.tileCount) tiles")
    let positionStride = channelCount * columns
    let tileColumns = tiling.tileColumns
    // Even and odd columns of the 4 rows: tileColumns + 1 each, as tile tx reads entry tx + 1.
    let rowLength = tileColumns + 1
    let split = UnsafeMutablePointer<Float>.allocate(capacity: 8 * rowLength)
    defer { split.deallocate() }
    for channel in channels {
        let plane = source + channel * planeSize
        let channelStart = destination + channel * columns
        let a = normalization?.scale[channel] ?? 1
        let b = normalization?.shift[channel] ?? 0
        let normalize = normalization != nil
        for ty in 0..<tiling.tileRows {
            let y0 = 2 * ty - tiling.padding
            for r in 0..<4 {
                let even = split + 2 * r * rowLength
                let odd = even + rowLength
                let y = y0 + r
                guard y >= 0 && y < height else {
                    even.update(repeating: 0, count: 2 * rowLength)
                    continue
                }
                let row = plane + y * width
                // Entries k with both columns 2k - p and 2k + 1 - p inside the row are split
                // without bounds tests; the few at the edges test each column.
                let first = min(rowLength, (tiling.padding + 1) / 2)
                let end = max(first, min(rowLength, (width - 1 + tiling.padding) / 2))
                func edge(_ k: Int) {
                    let xEven = 2 * k - tiling.padding
                    let xOdd = xEven + 1
                    var e: Float = 0
                    var o: Float = 0
                    if xEven >= 0 && xEven < width {
                        e = normalize ? row[xEven] * a + b : row[xEven]
                    }
                    if xOdd >= 0 && xOdd < width {
                        o = normalize ? row[xOdd] * a + b : row[xOdd]
                    }
                    even[k] = e
                    odd[k] = o
                }
                for k in 0..<first {
                    edge(k)
                }
                let interior = row + 2 * first - tiling.padding
                let count = end - first
                if normalize {
                    for i in 0..<count {
                        even[first + i] = interior[2 * i] * a + b
                        odd[first + i] = interior[2 * i + 1] * a + b
                    }
                } else {
                    for i in 0..<count {
                        even[first + i] = interior[2 * i]
                        odd[first + i] = interior[2 * i + 1]
                    }
                }
                for k in end..<rowLength {
                    edge(k)
                }
            }
            let rowStart = channelStart + ty * tileColumns
            var tx = 0
            while tx + 8 <= tileColumns {
                transformInputTiles(SIMD8<Float>.self, split: split, rowLength: rowLength, tx: tx,
                    into: rowStart, positionStride: positionStride)
                tx += 8
            }
            if tx + 4 <= tileColumns {
                transformInputTiles(SIMD4<Float>.self, split: split, rowLength: rowLength, tx: tx,
                    into: rowStart, positionStride: positionStride)
                tx += 4
            }
            if tx + 2 <= tileColumns {
                transformInputTiles(SIMD2<Float>.self, split: split, rowLength: rowLength, tx: tx,
                    into: rowStart, positionStride: positionStride)
                tx += 2
            }
            if tx < tileColumns {
                transformInputTile(split: split, rowLength: rowLength, tx: tx,
                    into: rowStart, positionStride: positionStride)
            }
        }
    }
}

/// Transforms V.scalarCount consecutive tiles of one tile row, from tile `tx` on. `split` holds
/// the even and odd columns of the tiles' 4 input rows; `rowStart` is where tile 0 of the row
/// goes in position 0's row of this channel.
@inline(__always)
private func transformInputTiles<V: SIMD>(
    _: V.Type, split: UnsafeMutablePointer<Float>, rowLength: Int, tx: Int,
    into rowStart: UnsafeMutablePointer<Float>, positionStride: Int
) where V.Scalar == Float {
    @inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
    // Row r, element j of every tile: even[tx], odd[tx], even[tx + 1], odd[tx + 1].
    @inline(__always) func row(_ r: Int) -> (V, V, V, V) {
        let even = split + 2 * r * rowLength + tx
        let odd = even + rowLength
        return (load(even), load(odd), load(even + 1), load(odd + 1))
    }
    let d0 = row(0)
    let d1 = row(1)
    let d2 = row(2)
    let d3 = row(3)
    // (B^T d) B: the same combination of the columns of each row of B^T d, stored at
    // positions 4i ..< 4i + 4.
    @inline(__always) func store(_ r: (V, V, V, V), row i: Int) {
        let p = UnsafeMutableRawPointer(rowStart + tx + i * 4 * positionStride)
        let stride = positionStride * MemoryLayout<Float>.stride
        p.storeBytes(of: r.0 - r.2, as: V.self)
        p.storeBytes(of: r.1 + r.2, toByteOffset: stride, as: V.self)
        p.storeBytes(of: r.2 - r.1, toByteOffset: 2 * stride, as: V.self)
        p.storeBytes(of: r.1 - r.3, toByteOffset: 3 * stride, as: V.self)
    }
    // B^T d: combine rows.
    store((d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3), row: 0)
    store((d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3), row: 1)
    store((d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3), row: 2)
    store((d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3), row: 3)
}

/// `transformInputTiles` for the single tile `tx`, with the same operations on scalars.
private func transformInputTile(
    split: UnsafeMutablePointer<Float>, rowLength: Int, tx: Int,
    into rowStart: UnsafeMutablePointer<Float>, positionStride: Int
) {
    func row(_ r: Int) -> SIMD4<Float> {
        let even = split + 2 * r * rowLength + tx
        let odd = even + rowLength
        return SIMD4(even[0], odd[0], even[1], odd[1])
    }
    let d0 = row(0)
    let d1 = row(1)
    let d2 = row(2)
    let d3 = row(3)
    func store(_ r: SIMD4<Float>, row i: Int) {
        let p = rowStart + tx + i * 4 * positionStride
        p[0] = r[0] - r[2]
        p[positionStride] = r[1] + r[2]
        p[2 * positionStride] = r[2] - r[1]
        p[3 * positionStride] = r[1] - r[3]
    }
    store(d0 - d2, row: 0)
    store(d1 + d2, row: 1)
    store(d2 - d1, row: 2)
    store(d1 - d3, row: 3)
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
    let planeSize = tiling.outputHeight * tiling.outputWidth
    precondition(products.count >= WinogradTiling.positions * outChannels * tiles,
        "Winograd: \(products.count) floats for [16, \(outChannels), \(tiles)] products")
    precondition(outputOffset >= 0 && outputOffset + outChannels * planeSize <= output.count,
        "Winograd: output image exceeds the output buffer")
    precondition(bias == nil || bias!.count == outChannels, "Winograd: bias size")
    products.withUnsafeBufferPointer { productBuffer in
        output.withUnsafeMutableBufferPointer { outputBuffer in
            withOptionalPointer(bias) { bias in
                let source = productBuffer.baseAddress!
                let destination = outputBuffer.baseAddress! + outputOffset
                forEachRange(count: outChannels, workers: workers) { channelRange in
                    winogradTransformOutput(
                        products: source, channels: channelRange, channelCount: outChannels,
                        columns: tiling.tileCount, tiling: tiling, bias: bias, epilogue: ChannelEpilogue(),
                        into: destination)
                }
            }
        }
    }
}

/// The pointer kernel of the output transform, for the output channels in `channels` of
/// `channelCount`. The products are a [16, channelCount, columns] block in which `products`
/// points at this image's first column (its tiles are the next `tiles` columns), and
/// `destination` is the image's whole [channelCount, Ho, Wo] output; only the planes of
/// `channels` are written. After each plane is written (with the bias), `epilogue` runs over
/// it while it is in cache.
///
/// The caller guarantees the buffer sizes. Reads use ξ < 16, o < channelCount and t < tiles;
/// writes use y < Ho and x < Wo, tested per element at the edge tiles.
func winogradTransformOutput(
    products: UnsafePointer<Float>, channels: Range<Int>, channelCount: Int, columns: Int,
    tiling: WinogradTiling, bias: UnsafePointer<Float>?, epilogue: ChannelEpilogue,
    into destination: UnsafeMutablePointer<Float>
) {
    let outputHeight = tiling.outputHeight
    let outputWidth = tiling.outputWidth
    let planeSize = outputHeight * outputWidth
    precondition(columns >= tiling.tileCount, "Winograd: \(columns) columns for \(tiling.tileCount) tiles")
    let positionStride = channelCount * columns
    let tileColumns = tiling.tileColumns
    // The four outputs of each tile of one tile row, y00, y01, y10 and y11, for all its tiles,
    // computed 8 tiles per SIMD vector and then interleaved into the two output rows.
    let paddedColumns = (tileColumns + 7) / 8 * 8
    let corners = UnsafeMutablePointer<Float>.allocate(capacity: 4 * paddedColumns)
    defer { corners.deallocate() }
    for o in channels {
        let b = bias?[o] ?? 0
        let plane = destination + o * planeSize
        let channelStart = products + o * columns
        for ty in 0..<tiling.tileRows {
            let rowStart = channelStart + ty * tileColumns
            var tx = 0
            while tx + 8 <= tileColumns {
                transformOutputTiles(SIMD8<Float>.self, rowStart: rowStart, tx: tx, positionStride: positionStride,
                    bias: b, corners: corners, cornerStride: paddedColumns)
                tx += 8
            }
            if tx + 4 <= tileColumns {
                transformOutputTiles(SIMD4<Float>.self, rowStart: rowStart, tx: tx, positionStride: positionStride,
                    bias: b, corners: corners, cornerStride: paddedColumns)
                tx += 4
            }
            if tx + 2 <= tileColumns {
                transformOutputTiles(SIMD2<Float>.self, rowStart: rowStart, tx: tx, positionStride: positionStride,
                    bias: b, corners: corners, cornerStride: paddedColumns)
                tx += 2
            }
            if tx < tileColumns {
                transformOutputTile(rowStart: rowStart, tx: tx, positionStride: positionStride,
                    bias: b, corners: corners, cornerStride: paddedColumns)
            }
            // Interleave: output row 2ty is y00, y01 of tile 0, then of tile 1, ...; row 2ty + 1
            // likewise with y10, y11. An odd Ho or Wo drops the last row or column.
            let y = 2 * ty
            let row0 = plane + y * outputWidth
            let evenColumns = outputWidth / 2
            for tx in 0..<evenColumns {
                row0[2 * tx] = corners[tx]
                row0[2 * tx + 1] = corners[paddedColumns + tx]
            }
            if outputWidth % 2 == 1 {
                row0[outputWidth - 1] = corners[evenColumns]
            }
            if y + 1 < outputHeight {
                let row1 = row0 + outputWidth
                let lower = corners + 2 * paddedColumns
                for tx in 0..<evenColumns {
                    row1[2 * tx] = lower[tx]
                    row1[2 * tx + 1] = lower[paddedColumns + tx]
                }
                if outputWidth % 2 == 1 {
                    row1[outputWidth - 1] = lower[evenColumns]
                }
            }
        }
        epilogue.apply(to: plane, count: planeSize, channel: o)
    }
}

/// Computes Y = A^T m A + bias for V.scalarCount consecutive tiles of one tile row, from tile
/// `tx` on, and stores y00, y01, y10 and y11 of tile tx + i at corners[k * cornerStride + tx + i]
/// for k = 0...3. `rowStart` points at the row's tile 0 in position 0's products.
@inline(__always)
private func transformOutputTiles<V: SIMD>(
    _: V.Type, rowStart: UnsafePointer<Float>, tx: Int, positionStride: Int, bias: Float,
    corners: UnsafeMutablePointer<Float>, cornerStride: Int
) where V.Scalar == Float {
    @inline(__always) func m(_ position: Int) -> V {
        UnsafeRawPointer(rowStart + tx + position * positionStride).loadUnaligned(as: V.self)
    }
    // A^T m: combine rows, column j of each row being position 4r + j.
    let s00 = m(0) + m(4) + m(8)
    let s01 = m(1) + m(5) + m(9)
    let s02 = m(2) + m(6) + m(10)
    let s03 = m(3) + m(7) + m(11)
    let s10 = m(4) - m(8) - m(12)
    let s11 = m(5) - m(9) - m(13)
    let s12 = m(6) - m(10) - m(14)
    let s13 = m(7) - m(11) - m(15)
    // (A^T m) A: combine the columns of each row.
    let b = V(repeating: bias)
    let p = UnsafeMutableRawPointer(corners + tx)
    let stride = cornerStride * MemoryLayout<Float>.stride
    p.storeBytes(of: s00 + s01 + s02 + b, as: V.self)
    p.storeBytes(of: s01 - s02 - s03 + b, toByteOffset: stride, as: V.self)
    p.storeBytes(of: s10 + s11 + s12 + b, toByteOffset: 2 * stride, as: V.self)
    p.storeBytes(of: s11 - s12 - s13 + b, toByteOffset: 3 * stride, as: V.self)
}

/// `transformOutputTiles` for the single tile `tx`, with the same operations on scalars.
private func transformOutputTile(
    rowStart: UnsafePointer<Float>, tx: Int, positionStride: Int, bias b: Float,
    corners: UnsafeMutablePointer<Float>, cornerStride: Int
) {
    func load(_ row: Int) -> SIMD4<Float> {
        let p = rowStart + tx + row * 4 * positionStride
        return SIMD4(p[0], p[positionStride], p[2 * positionStride], p[3 * positionStride])
    }
    let m0 = load(0)
    let m1 = load(1)
    let m2 = load(2)
    let m3 = load(3)
    let s0 = m0 + m1 + m2
    let s1 = m1 - m2 - m3
    corners[tx] = s0[0] + s0[1] + s0[2] + b
    corners[cornerStride + tx] = s0[1] - s0[2] - s0[3] + b
    corners[2 * cornerStride + tx] = s1[0] + s1[1] + s1[2] + b
    corners[3 * cornerStride + tx] = s1[1] - s1[2] - s1[3] + b
}

/// Calls `body` with the base address of `array`, or with nil when `array` is nil.
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
