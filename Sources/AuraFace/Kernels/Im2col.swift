// im2col: unfolds the receptive fields of a 2-D convolution into the columns of a matrix, so
// that the convolution of one image becomes one GEMM: output [Cout, Ho*Wo] =
// weight [Cout, C*k*k] x columns [C*k*k, Ho*Wo].

/// The sizes of a square-kernel 2-D convolution over one image in CHW layout.
struct ConvolutionGeometry: Equatable {
    var inChannels: Int
    var height: Int
    var width: Int
    var kernelSize: Int
    var stride: Int
    var padding: Int

    init(inChannels: Int, height: Int, width: Int, kernelSize: Int, stride: Int, padding: Int) {
        precondition(inChannels >= 1 && height >= 1 && width >= 1, "empty convolution input")
        precondition(kernelSize >= 1 && stride >= 1 && padding >= 0, "invalid convolution parameters")
        precondition(height + 2 * padding >= kernelSize && width + 2 * padding >= kernelSize,
            "kernel \(kernelSize) larger than padded input \(height)x\(width) + \(padding)")
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    /// Ho = floor((H + 2p - k) / s) + 1, as in PyTorch and ONNX Conv.
    var outputHeight: Int { (height + 2 * padding - kernelSize) / stride + 1 }
    var outputWidth: Int { (width + 2 * padding - kernelSize) / stride + 1 }
    /// Rows of the column matrix: one per (input channel, kernel row, kernel column).
    var columnRows: Int { inChannels * kernelSize * kernelSize }
    /// Columns of the column matrix for one image: one per output pixel.
    var outputPlaneSize: Int { outputHeight * outputWidth }
    var inputImageSize: Int { inChannels * height * width }
}

/// Unfolds one image into a column matrix, zero-filling where the kernel overlaps the padding.
///
/// Reads `input[inputOffset ..< inputOffset + C*H*W]` as [C, H, W]. Writes a
/// `[C*k*k, Ho*Wo]` block into `columns` starting at `columnsOffset`, with row stride
/// `rowStride` (at least Ho*Wo), so the block can also be part of a wider matrix.
/// Row `(c*k + ky)*k + kx`, column `oy*Wo + ox` contains `input[c, oy*s - p + ky, ox*s - p + kx]`,
/// which matches the weight layout [Cout, C, k, k] read as [Cout, C*k*k].
func im2col(
    input: [Float], inputOffset: Int = 0,
    geometry g: ConvolutionGeometry,
    columns: inout [Float], columnsOffset: Int = 0, rowStride: Int
) {
    let outputWidth = g.outputWidth
    let planeSize = g.outputPlaneSize
    precondition(rowStride >= planeSize, "im2col: row stride \(rowStride) below Ho*Wo \(planeSize)")
    precondition(inputOffset >= 0 && inputOffset + g.inputImageSize <= input.count,
        "im2col: input image exceeds the input buffer")
    precondition(columnsOffset >= 0
        && columnsOffset + (g.columnRows - 1) * rowStride + planeSize <= columns.count,
        "im2col: column block exceeds the columns buffer")

    // Invariant for the pointer code below: the preconditions above bound every read to the
    // input image and every write to the column block. Reads use iy in 0..<H and ix in 0..<W
    // only; writes use row < C*k*k and column < Ho*Wo.
    input.withUnsafeBufferPointer { inputBuffer in
        columns.withUnsafeMutableBufferPointer { columnsBuffer in
            let source = inputBuffer.baseAddress! + inputOffset
            let destination = columnsBuffer.baseAddress! + columnsOffset
            for channel in 0..<g.inChannels {
                let plane = source + channel * g.height * g.width
                for ky in 0..<g.kernelSize {
                    for kx in 0..<g.kernelSize {
                        let row = (channel * g.kernelSize + ky) * g.kernelSize + kx
                        let rowStart = destination + row * rowStride
                        // Output columns ox whose input column ix = ox*s - p + kx lies in 0..<W.
                        let firstColumn = ceilDivide(g.padding - kx, g.stride)
                        let lastColumn = floorDivide(g.width - 1 + g.padding - kx, g.stride)
                        let validStart = min(max(0, firstColumn), outputWidth)
                        let validEnd = max(validStart, min(outputWidth, lastColumn + 1))
                        for oy in 0..<g.outputHeight {
                            let out = rowStart + oy * outputWidth
                            let iy = oy * g.stride - g.padding + ky
                            if iy < 0 || iy >= g.height {
                                out.update(repeating: 0, count: outputWidth)
                                continue
                            }
                            out.update(repeating: 0, count: validStart)
                            let inputRow = plane + iy * g.width
                            let ix0 = validStart * g.stride - g.padding + kx
                            if g.stride == 1 {
                                (out + validStart).update(from: inputRow + ix0, count: validEnd - validStart)
                            } else {
                                for ox in validStart..<validEnd {
                                    out[ox] = inputRow[ix0 + (ox - validStart) * g.stride]
                                }
                            }
                            (out + validEnd).update(repeating: 0, count: outputWidth - validEnd)
                        }
                    }
                }
            }
        }
    }
}

/// ceil(a / b) for b > 0 and any sign of a (Swift's `/` truncates toward zero).
private func ceilDivide(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? (a + b - 1) / b : -((-a) / b)
}

/// floor(a / b) for b > 0 and any sign of a.
private func floorDivide(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? a / b : -((-a + b - 1) / b)
}

/// Allocates an array of `count` floats whose contents are unspecified, for buffers that the caller
/// overwrites completely (GEMM outputs with beta = 0, im2col blocks). Skips the zero fill
/// that `Array(repeating:count:)` would spend on hundreds of megabytes per forward pass.
func uninitializedFloats(count: Int) -> [Float] {
    // Float is a trivial type and any bit pattern is a valid value, so the elements need no
    // initialization. The contract above makes the caller write every one before reading.
    [Float](unsafeUninitializedCapacity: count) { _, initializedCount in
        initializedCount = count
    }
}
