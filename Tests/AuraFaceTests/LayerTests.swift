// Each layer against the reference loops, over odd sizes, strides, padding and batches.

import Testing

@testable import AuraFace

@Suite struct LayerTests {
    init() throws {
        try OpenBLAS.load()
    }

    private func randomMap(
        _ random: inout SeededRandom, batch: Int, channels: Int, height: Int, width: Int
    ) -> FeatureMap {
        FeatureMap(
            batch: batch, channels: channels, height: height, width: width,
            values: random.floats(batch * channels * height * width))
    }

    @Test(arguments: ConvolutionCase.all, [false, true])
    func conv2DMatchesDirectConvolution(_ c: ConvolutionCase, withBias: Bool) {
        var random = SeededRandom(seed: 21)
        let x = randomMap(&random, batch: c.batch, channels: c.inChannels, height: c.height, width: c.width)
        let weight = random.floats(c.outChannels * c.inChannels * c.kernelSize * c.kernelSize)
        let bias = withBias ? random.floats(c.outChannels) : nil
        let conv = Conv2D(
            inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize,
            stride: c.stride, padding: c.padding, weight: weight, bias: bias)
        let y = conv(x)
        let expected = Reference.conv2D(
            input: x.values, batch: c.batch, inChannels: c.inChannels, height: c.height,
            width: c.width, weight: weight, bias: bias, outChannels: c.outChannels,
            kernelSize: c.kernelSize, stride: c.stride, padding: c.padding)
        let outputHeight = (c.height + 2 * c.padding - c.kernelSize) / c.stride + 1
        let outputWidth = (c.width + 2 * c.padding - c.kernelSize) / c.stride + 1
        #expect(y.shape == [c.batch, c.outChannels, outputHeight, outputWidth])
        expectClose(y.values, expected)
    }

    @Test(arguments: [(5, 7), (1, 1)])
    func batchNormMatchesFormula(height: Int, width: Int) {
        var random = SeededRandom(seed: 23)
        let channels = 3
        let x = randomMap(&random, batch: 2, channels: channels, height: height, width: width)
        let gamma = random.floats(channels, in: 0.5...1.5)
        let beta = random.floats(channels)
        let mean = random.floats(channels)
        let variance = random.floats(channels, in: 0.01...2)
        let norm = BatchNorm(weight: gamma, bias: beta, runningMean: mean, runningVariance: variance, eps: 1e-5)
        let y = norm(x)
        #expect(y.shape == x.shape)
        let expected = Reference.batchNorm(
            input: x.values, channels: channels, planeSize: height * width, weight: gamma,
            bias: beta, runningMean: mean, runningVariance: variance, eps: 1e-5)
        expectClose(y.values, expected)
    }

    @Test func foldedBatchNormIsIdentity() {
        var random = SeededRandom(seed: 24)
        let x = randomMap(&random, batch: 2, channels: 3, height: 2, width: 2)
        let absent: BatchNorm? = nil
        #expect(absent(x).values == x.values)
    }

    @Test func preluMatchesDefinition() {
        var random = SeededRandom(seed: 25)
        let x = randomMap(&random, batch: 3, channels: 4, height: 5, width: 3)
        let slope = random.floats(4, in: -0.5...0.5)
        let y = PReLU(slope: slope)(x)
        #expect(y.values == Reference.prelu(input: x.values, channels: 4, planeSize: 15, slope: slope))
    }

    @Test func fullyConnectedMatchesMatmul() {
        var random = SeededRandom(seed: 26)
        let (batch, inFeatures, outFeatures) = (3, 20, 7)
        // A [3, 5, 2, 2] map flattened to [3, 20], as the head does.
        let x = flatten(randomMap(&random, batch: batch, channels: 5, height: 2, width: 2))
        #expect(x.shape == [batch, inFeatures, 1, 1])
        let weight = random.floats(outFeatures * inFeatures)
        let bias = random.floats(outFeatures)
        let fc = FullyConnected(inFeatures: inFeatures, outFeatures: outFeatures, weight: weight, bias: bias)
        let y = fc(x)
        #expect(y.shape == [batch, outFeatures, 1, 1])
        let expected = Reference.fullyConnected(
            input: x.values, batch: batch, inFeatures: inFeatures, weight: weight, bias: bias,
            outFeatures: outFeatures)
        expectClose(y.values, expected)
    }

    @Test func residualAddSumsElementwise() {
        let a = FeatureMap(batch: 1, channels: 2, height: 1, width: 2, values: [1, 2, 3, 4])
        let b = FeatureMap(batch: 1, channels: 2, height: 1, width: 2, values: [10, 20, 30, 40])
        let sum = a + b
        #expect(sum.values == [11, 22, 33, 44])
        #expect(sum.shape == [1, 2, 1, 2])
        #expect(a.values == [1, 2, 3, 4], "the left operand's caller copy must be unchanged")
    }

    @Test func flattenKeepsValueOrder() {
        let values: [Float] = (0..<24).map(Float.init)
        let x = FeatureMap(batch: 2, channels: 3, height: 2, width: 2, values: values)
        let flat = flatten(x)
        #expect(flat.shape == [2, 12, 1, 1])
        #expect(flat.values == values)
    }
}
