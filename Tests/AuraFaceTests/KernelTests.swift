// The fast kernels against plain loops: im2col + sgemm against direct convolution, sgemm
// against a naive matrix multiply, the per-channel loops against their formulas.

import Testing

@testable import AuraFace

/// One convolution configuration, labelled for test output.
struct ConvolutionCase: CustomTestStringConvertible, Sendable {
    var batch: Int
    var inChannels: Int
    var outChannels: Int
    var height: Int
    var width: Int
    var kernelSize: Int
    var stride: Int
    var padding: Int

    var testDescription: String {
        "N\(batch) C\(inChannels)->\(outChannels) \(height)x\(width) k\(kernelSize) s\(stride) p\(padding)"
    }

    static let all: [ConvolutionCase] = [
        .init(batch: 2, inChannels: 3, outChannels: 5, height: 5, width: 7, kernelSize: 3, stride: 1, padding: 1),
        .init(batch: 2, inChannels: 3, outChannels: 5, height: 5, width: 7, kernelSize: 3, stride: 2, padding: 1),
        .init(batch: 2, inChannels: 3, outChannels: 5, height: 5, width: 7, kernelSize: 3, stride: 1, padding: 0),
        .init(batch: 2, inChannels: 3, outChannels: 5, height: 5, width: 7, kernelSize: 3, stride: 2, padding: 0),
        .init(batch: 3, inChannels: 4, outChannels: 6, height: 7, width: 5, kernelSize: 1, stride: 1, padding: 0),
        .init(batch: 3, inChannels: 4, outChannels: 6, height: 7, width: 5, kernelSize: 1, stride: 2, padding: 0),
        .init(batch: 1, inChannels: 2, outChannels: 3, height: 9, width: 6, kernelSize: 5, stride: 2, padding: 2),
        .init(batch: 1, inChannels: 2, outChannels: 3, height: 4, width: 4, kernelSize: 3, stride: 3, padding: 1),
        // Kernel wider than the image: every output reads padding on both sides.
        .init(batch: 2, inChannels: 2, outChannels: 2, height: 1, width: 1, kernelSize: 3, stride: 1, padding: 1),
        .init(batch: 1, inChannels: 1, outChannels: 1, height: 2, width: 3, kernelSize: 5, stride: 1, padding: 2),
    ]
}

/// im2col written as the definition, with a bounds test per element.
private func naiveIm2col(_ input: [Float], inputOffset: Int, geometry g: ConvolutionGeometry) -> [Float] {
    var columns: [Float] = []
    for c in 0..<g.inChannels {
        for ky in 0..<g.kernelSize {
            for kx in 0..<g.kernelSize {
                for oy in 0..<g.outputHeight {
                    for ox in 0..<g.outputWidth {
                        let iy = oy * g.stride - g.padding + ky
                        let ix = ox * g.stride - g.padding + kx
                        let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
                        columns.append(inside ? input[inputOffset + (c * g.height + iy) * g.width + ix] : 0)
                    }
                }
            }
        }
    }
    return columns
}

@Suite struct KernelTests {
    init() throws {
        try OpenBLAS.load()
    }

    @Test(arguments: ConvolutionCase.all)
    func im2colMatchesDefinition(_ c: ConvolutionCase) {
        var random = SeededRandom(seed: 11)
        let input = random.floats(c.batch * c.inChannels * c.height * c.width)
        let g = ConvolutionGeometry(
            inChannels: c.inChannels, height: c.height, width: c.width,
            kernelSize: c.kernelSize, stride: c.stride, padding: c.padding)
        let imageSize = c.inChannels * c.height * c.width
        for n in 0..<c.batch {
            // NaN sentinels show any element im2col fails to write.
            var columns = [Float](repeating: .nan, count: g.columnRows * g.outputPlaneSize)
            im2col(
                input: input, inputOffset: n * imageSize, geometry: g, columns: &columns,
                rowStride: g.outputPlaneSize)
            #expect(columns == naiveIm2col(input, inputOffset: n * imageSize, geometry: g))
        }
    }

    @Test func im2colWritesOnlyItsBlock() {
        // A block written into the left half of a [rows, 2 * Ho*Wo] matrix must leave the
        // right half untouched.
        let g = ConvolutionGeometry(inChannels: 2, height: 3, width: 4, kernelSize: 3, stride: 1, padding: 1)
        var random = SeededRandom(seed: 12)
        let input = random.floats(2 * g.inputImageSize)
        let plane = g.outputPlaneSize
        var columns = [Float](repeating: -7, count: g.columnRows * 2 * plane)
        im2col(input: input, geometry: g, columns: &columns, rowStride: 2 * plane)
        let expected = naiveIm2col(input, inputOffset: 0, geometry: g)
        for row in 0..<g.columnRows {
            let left = Array(columns[(row * 2 * plane)..<(row * 2 * plane + plane)])
            let right = Array(columns[(row * 2 * plane + plane)..<((row + 1) * 2 * plane)])
            #expect(left == Array(expected[(row * plane)..<((row + 1) * plane)]))
            #expect(right.allSatisfy { $0 == -7 })
        }
    }

    @Test(arguments: ConvolutionCase.all)
    func im2colGEMMMatchesDirectConvolution(_ c: ConvolutionCase) {
        var random = SeededRandom(seed: 13)
        let input = random.floats(c.batch * c.inChannels * c.height * c.width)
        let weight = random.floats(c.outChannels * c.inChannels * c.kernelSize * c.kernelSize)
        let g = ConvolutionGeometry(
            inChannels: c.inChannels, height: c.height, width: c.width,
            kernelSize: c.kernelSize, stride: c.stride, padding: c.padding)
        let plane = g.outputPlaneSize
        var output = [Float](repeating: .nan, count: c.batch * c.outChannels * plane)
        var columns = [Float](repeating: .nan, count: g.columnRows * plane)
        for n in 0..<c.batch {
            im2col(input: input, inputOffset: n * g.inputImageSize, geometry: g, columns: &columns, rowStride: plane)
            sgemm(
                m: c.outChannels, n: plane, k: g.columnRows, a: weight, lda: g.columnRows,
                b: columns, ldb: plane, c: &output, cOffset: n * c.outChannels * plane, ldc: plane)
        }
        let expected = Reference.conv2D(
            input: input, batch: c.batch, inChannels: c.inChannels, height: c.height, width: c.width,
            weight: weight, bias: nil, outChannels: c.outChannels,
            kernelSize: c.kernelSize, stride: c.stride, padding: c.padding)
        expectClose(output, expected)
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func sgemmMatchesNaiveMatmul(transposeA: Bool, transposeB: Bool) {
        let (m, n, k) = (5, 7, 3)
        var random = SeededRandom(seed: 14)
        let a = random.floats(m * k)
        let b = random.floats(k * n)
        // Store the operands as sgemm will read them: transposed when asked, with a row
        // stride two wider than the row and an offset, so strides and offsets are exercised.
        func stored(_ matrix: [Float], rows: Int, columns: Int, transpose: Bool) -> (values: [Float], stride: Int) {
            let (storedRows, storedColumns) = transpose ? (columns, rows) : (rows, columns)
            let stride = storedColumns + 2
            var values = [Float](repeating: .nan, count: 3 + storedRows * stride)
            for r in 0..<rows {
                for col in 0..<columns {
                    let (sr, sc) = transpose ? (col, r) : (r, col)
                    values[3 + sr * stride + sc] = matrix[r * columns + col]
                }
            }
            return (values, stride)
        }
        let storedA = stored(a, rows: m, columns: k, transpose: transposeA)
        let storedB = stored(b, rows: k, columns: n, transpose: transposeB)
        var c = [Float](repeating: 1, count: m * n)
        sgemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 2,
            a: storedA.values, aOffset: 3, lda: storedA.stride,
            b: storedB.values, bOffset: 3, ldb: storedB.stride,
            beta: 0.5, c: &c, ldc: n)
        let expected = Reference.matmul(a: a, b: b, m: m, n: n, k: k).map { 2 * $0 + 0.5 }
        expectClose(c, expected)
    }

    @Test func sgemmWithEmptySumOverwritesOutput() {
        var c: [Float] = [.nan, 3, 4, 5]
        sgemm(m: 2, n: 2, k: 0, a: [], lda: 1, b: [], ldb: 2, beta: 0, c: &c, ldc: 2)
        #expect(c == [0, 0, 0, 0])
    }

    @Test(arguments: [1, 5])
    func scaleShiftMatchesBatchNormFormula(planeSize: Int) {
        let (batch, channels) = (2, 3)
        var random = SeededRandom(seed: 15)
        let input = random.floats(batch * channels * planeSize, in: -3...3)
        let gamma = random.floats(channels, in: 0.5...1.5)
        let beta = random.floats(channels)
        let mean = random.floats(channels)
        let variance = random.floats(channels, in: 0.1...2)
        let norm = BatchNorm(weight: gamma, bias: beta, runningMean: mean, runningVariance: variance, eps: 1e-5)
        var values = input
        scaleShiftChannels(&values, channels: channels, planeSize: planeSize, scale: norm.scale, shift: norm.shift)
        let expected = Reference.batchNorm(
            input: input, channels: channels, planeSize: planeSize, weight: gamma, bias: beta,
            runningMean: mean, runningVariance: variance, eps: 1e-5)
        expectClose(values, expected)
    }

    @Test func preluChannelsMatchesDefinition() {
        let (batch, channels, planeSize) = (2, 3, 5)
        var random = SeededRandom(seed: 16)
        var input = random.floats(batch * channels * planeSize)
        input[0] = 0
        input[1] = -0.0
        let slope: [Float] = [0.25, -0.5, 2]
        var values = input
        preluChannels(&values, channels: channels, planeSize: planeSize, slope: slope)
        #expect(values == Reference.prelu(input: input, channels: channels, planeSize: planeSize, slope: slope))
        #expect(values.contains { $0 < 0 })
    }

    @Test func addBiasAndResidualAdd() {
        var values: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]  // [N 2, C 2, plane 2]
        addBiasChannels(&values, channels: 2, planeSize: 2, bias: [10, 20])
        #expect(values == [11, 12, 23, 24, 15, 16, 27, 28])
        addElementwise(&values, [1, 1, 1, 1, -1, -1, -1, -1])
        #expect(values == [12, 13, 24, 25, 14, 15, 26, 27])
    }

    @Test func l2NormalizeGivesUnitVector() throws {
        let v: [Float] = [3, -4, 0, 12]
        let unit = try l2Normalize(v)
        expectClose(unit, [3 / 13, -4 / 13, 0, 12 / 13], tolerance: 1e-7)
    }

    @Test(arguments: [Float(1e30), Float(1e-40)])
    func l2NormalizeSurvivesExtremeMagnitudes(scale: Float) throws {
        // Squares of 1e30 overflow Float and squares of 1e-40 (a subnormal) underflow to 0.
        let unit = try l2Normalize([3 * scale, 4 * scale])
        #expect(unit.allSatisfy { $0.isFinite })
        // Subnormal inputs carry only about 5 significant digits.
        expectClose(unit, [0.6, 0.8], tolerance: 1e-4)
    }

    @Test func l2NormalizeRejectsZeroVector() {
        #expect(throws: InferenceError.zeroVector(length: 3)) { try l2Normalize([0, 0, 0]) }
        #expect(throws: InferenceError.zeroVector(length: 0)) { try l2Normalize([]) }
        #expect(InferenceError.zeroVector(length: 3).description == "cannot L2-normalize a zero vector of length 3")
    }

    @Test func l2NormalizeRejectsNonFiniteVector() {
        #expect(throws: InferenceError.nonFiniteVector(count: 2, length: 3)) {
            try l2Normalize([.nan, 1, .infinity])
        }
        #expect(
            InferenceError.nonFiniteVector(count: 2, length: 3).description
                == "cannot L2-normalize a vector of length 3 that holds 2 NaN or infinite values")
    }
}
