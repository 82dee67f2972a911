// Winograd F(2x2, 3x3) against the direct convolution, the im2col path and the transform
// matrices of Lavin & Gray (2016) applied as plain matrix products.

import Testing

@testable import AuraFace

/// B^T, G and A^T of F(2x2, 3x3), from Lavin & Gray 2016, "Fast Algorithms for Convolutional
/// Neural Networks", section 4.1.
private enum WinogradMatrices {
    static let bTransposed: [[Double]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    static let g: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
    static let aTransposed: [[Double]] = [[1, 1, 1, 0], [0, 1, -1, -1]]

    static func multiply(_ x: [[Double]], _ y: [[Double]]) -> [[Double]] {
        (0..<x.count).map { i in
            (0..<y[0].count).map { j in
                (0..<y.count).reduce(0.0) { $0 + x[i][$1] * y[$1][j] }
            }
        }
    }

    static func transpose(_ x: [[Double]]) -> [[Double]] {
        (0..<x[0].count).map { j in x.map { $0[j] } }
    }
}

@Suite struct WinogradTests {
    init() throws {
        try OpenBLAS.load()
    }

    /// 3x3 stride-1 cases: odd and even sizes, images smaller than a tile, padding 0 to 2,
    /// batches above 1, and channel counts that do not fill the GEMM kernel's blocks.
    static let cases: [ConvolutionCase] = [
        .init(batch: 2, inChannels: 3, outChannels: 5, height: 5, width: 7, kernelSize: 3, stride: 1, padding: 1),
        .init(batch: 3, inChannels: 4, outChannels: 2, height: 8, width: 8, kernelSize: 3, stride: 1, padding: 1),
        .init(batch: 2, inChannels: 2, outChannels: 3, height: 9, width: 6, kernelSize: 3, stride: 1, padding: 0),
        .init(batch: 1, inChannels: 2, outChannels: 3, height: 7, width: 5, kernelSize: 3, stride: 1, padding: 2),
        .init(batch: 2, inChannels: 2, outChannels: 2, height: 1, width: 1, kernelSize: 3, stride: 1, padding: 1),
        .init(batch: 2, inChannels: 1, outChannels: 1, height: 3, width: 4, kernelSize: 3, stride: 1, padding: 0),
        .init(batch: 2, inChannels: 37, outChannels: 19, height: 13, width: 11, kernelSize: 3, stride: 1, padding: 1),
    ]

    private func convolution(
        _ c: ConvolutionCase, withBias: Bool, seed: UInt64
    ) -> (input: FeatureMap, weight: [Float], bias: [Float]?) {
        var random = SeededRandom(seed: seed)
        let input = FeatureMap(
            batch: c.batch, channels: c.inChannels, height: c.height, width: c.width,
            values: random.floats(c.batch * c.inChannels * c.height * c.width))
        let weight = random.floats(c.outChannels * c.inChannels * 9)
        let bias = withBias ? random.floats(c.outChannels) : nil
        return (input, weight, bias)
    }

    @Test(arguments: cases, [false, true])
    func winogradMatchesDirectAndPlain(_ c: ConvolutionCase, withBias: Bool) {
        let (x, weight, bias) = convolution(c, withBias: withBias, seed: 61)
        func conv(_ algorithm: ConvolutionAlgorithm) -> Conv2D {
            Conv2D(
                inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: 3, stride: 1,
                padding: c.padding, weight: weight, bias: bias, algorithm: algorithm)
        }
        let winograd = conv(.winograd)
        let plain = conv(.plain)
        #expect(winograd.winogradWeight != nil)
        #expect(plain.winogradWeight == nil)

        let fast = winograd(x)
        let audited = plain(x)
        let expected = Reference.conv2D(
            input: x.values, batch: c.batch, inChannels: c.inChannels, height: c.height,
            width: c.width, weight: weight, bias: bias, outChannels: c.outChannels,
            kernelSize: 3, stride: 1, padding: c.padding)
        let outputHeight = c.height + 2 * c.padding - 2
        let outputWidth = c.width + 2 * c.padding - 2
        #expect(fast.shape == [c.batch, c.outChannels, outputHeight, outputWidth])
        #expect(fast.shape == audited.shape)
        expectClose(fast.values, expected, "winograd against the direct convolution")
        expectClose(fast.values, audited.values, "winograd against im2col and GEMM")
    }

    @Test func batchRowsEqualSingleImages() {
        let c = Self.cases[6]
        let (x, weight, bias) = convolution(c, withBias: true, seed: 62)
        let conv = Conv2D(
            inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: 3, padding: 1,
            weight: weight, bias: bias, algorithm: .winograd)
        let batched = conv(x)
        for n in 0..<c.batch {
            let image = FeatureMap(
                batch: 1, channels: x.channels, height: x.height, width: x.width,
                values: Array(x.values[(n * x.imageSize)..<((n + 1) * x.imageSize)]))
            let single = conv(image)
            let row = Array(batched.values[(n * batched.imageSize)..<((n + 1) * batched.imageSize)])
            #expect(row == single.values, "image \(n)")
        }
    }

    @Test func stridedAndOneByOneConvolutionsIgnoreWinograd() {
        let weight3 = [Float](repeating: 0.5, count: 2 * 2 * 9)
        let strided = Conv2D(
            inChannels: 2, outChannels: 2, kernelSize: 3, stride: 2, padding: 1, weight: weight3,
            algorithm: .winograd)
        let pointwise = Conv2D(
            inChannels: 2, outChannels: 2, kernelSize: 1, weight: [1, 0, 0, 1], algorithm: .winograd)
        #expect(strided.winogradWeight == nil)
        #expect(pointwise.winogradWeight == nil)
    }

    @Test func weightTransformIsGKernelGTransposed() {
        let outChannels = 3
        let inChannels = 2
        var random = SeededRandom(seed: 63)
        let weight = random.floats(outChannels * inChannels * 9)
        let transformed = winogradTransformWeights(weight, outChannels: outChannels, inChannels: inChannels)
        #expect(transformed.count == 16 * outChannels * inChannels)
        let pairs = outChannels * inChannels
        var worst: Double = 0
        for pair in 0..<pairs {
            let kernel = (0..<3).map { i in (0..<3).map { j in Double(weight[pair * 9 + i * 3 + j]) } }
            let g = WinogradMatrices.g
            let expected = WinogradMatrices.multiply(
                WinogradMatrices.multiply(g, kernel), WinogradMatrices.transpose(g))
            for i in 0..<4 {
                for j in 0..<4 {
                    worst = max(worst, abs(Double(transformed[(i * 4 + j) * pairs + pair]) - expected[i][j]))
                }
            }
        }
        #expect(worst <= 1e-6)
    }

    @Test(arguments: [0, 1, 2])
    func inputTransformIsBTransposedTileB(padding: Int) {
        let channels = 2
        let tiling = WinogradTiling(height: 5, width: 6, padding: padding)
        var random = SeededRandom(seed: 64)
        let input = random.floats(channels * tiling.height * tiling.width)
        let tiles = tiling.tileCount
        var transformed = [Float](repeating: .nan, count: 16 * channels * tiles)
        winogradTransformInput(input, channels: channels, tiling: tiling, into: &transformed)

        var worst: Double = 0
        for channel in 0..<channels {
            for ty in 0..<tiling.tileRows {
                for tx in 0..<tiling.tileColumns {
                    let tile = (0..<4).map { i in
                        (0..<4).map { j -> Double in
                            let y = 2 * ty - padding + i
                            let x = 2 * tx - padding + j
                            let inside = y >= 0 && y < tiling.height && x >= 0 && x < tiling.width
                            return inside ? Double(input[(channel * tiling.height + y) * tiling.width + x]) : 0
                        }
                    }
                    let bT = WinogradMatrices.bTransposed
                    let expected = WinogradMatrices.multiply(
                        WinogradMatrices.multiply(bT, tile), WinogradMatrices.transpose(bT))
                    let t = ty * tiling.tileColumns + tx
                    for i in 0..<4 {
                        for j in 0..<4 {
                            let value = transformed[((i * 4 + j) * channels + channel) * tiles + t]
                            worst = max(worst, abs(Double(value) - expected[i][j]))
                        }
                    }
                }
            }
        }
        #expect(worst <= 1e-6)
    }

    @Test func outputTransformIsATransposedProductA() {
        let outChannels = 2
        let tiling = WinogradTiling(height: 5, width: 3, padding: 1)  // Output 5x3: edge tiles clipped.
        let tiles = tiling.tileCount
        var random = SeededRandom(seed: 65)
        let products = random.floats(16 * outChannels * tiles)
        let bias: [Float] = [0.25, -1.5]
        let planeSize = tiling.outputHeight * tiling.outputWidth
        var output = [Float](repeating: .nan, count: outChannels * planeSize)
        winogradTransformOutput(products, outChannels: outChannels, tiling: tiling, bias: bias, into: &output)

        var expected = [Float](repeating: .nan, count: output.count)
        for o in 0..<outChannels {
            for ty in 0..<tiling.tileRows {
                for tx in 0..<tiling.tileColumns {
                    let t = ty * tiling.tileColumns + tx
                    let m = (0..<4).map { i in
                        (0..<4).map { j in Double(products[((i * 4 + j) * outChannels + o) * tiles + t]) }
                    }
                    let aT = WinogradMatrices.aTransposed
                    let y = WinogradMatrices.multiply(WinogradMatrices.multiply(aT, m), WinogradMatrices.transpose(aT))
                    for i in 0..<2 where 2 * ty + i < tiling.outputHeight {
                        for j in 0..<2 where 2 * tx + j < tiling.outputWidth {
                            let index = (o * tiling.outputHeight + 2 * ty + i) * tiling.outputWidth + 2 * tx + j
                            expected[index] = Float(y[i][j] + Double(bias[o]))
                        }
                    }
                }
            }
        }
        #expect(!output.contains { $0.isNaN }, "every output value written")
        expectClose(output, expected)
    }

    @Test func threadSplitLeavesTransformsUnchanged() {
        let channels = 5
        let tiling = WinogradTiling(height: 9, width: 7, padding: 1)
        var random = SeededRandom(seed: 67)
        let input = random.floats(channels * tiling.height * tiling.width)
        let size = 16 * channels * tiling.tileCount
        var serial = [Float](repeating: .nan, count: size)
        var split = [Float](repeating: .nan, count: size)
        winogradTransformInput(input, channels: channels, tiling: tiling, into: &serial, workers: 1)
        winogradTransformInput(input, channels: channels, tiling: tiling, into: &split, workers: 3)
        #expect(split == serial)

        let planeSize = tiling.outputHeight * tiling.outputWidth
        var serialOutput = [Float](repeating: .nan, count: channels * planeSize)
        var splitOutput = [Float](repeating: .nan, count: channels * planeSize)
        winogradTransformOutput(serial, outChannels: channels, tiling: tiling, bias: nil, into: &serialOutput, workers: 1)
        winogradTransformOutput(serial, outChannels: channels, tiling: tiling, bias: nil, into: &splitOutput, workers: 3)
        #expect(splitOutput == serialOutput)
    }

    @Test func modelAlgorithmsAgree() throws {
        let architecture = SyntheticWeights.tinyArchitecture
        let file = try SyntheticWeights.file(architecture, seed: 7)
        let plain = try AuraFaceModel(safeTensors: file, convolution: .plain)
        let winograd = try AuraFaceModel(safeTensors: file, convolution: .winograd)
        var random = SeededRandom(seed: 66)
        let imageSize = architecture.inputChannels * architecture.inputSize * architecture.inputSize
        let x = random.floats(2 * imageSize)
        let a = try plain.rawEmbeddings(normalizedInput: x, batchSize: 2)
        let b = try winograd.rawEmbeddings(normalizedInput: x, batchSize: 2)
        #expect(a != b, "the two algorithms round differently, so the switch took effect")
        expectClose(b.flatMap { $0 }, a.flatMap { $0 }, tolerance: 1e-4)
    }
}
