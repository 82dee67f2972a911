// Plain loops that compute each operation straight from its definition: the oracle the tests
// compare the fast kernels and layers against, and a readable statement of the math for
// auditing. Sums are accumulated in Double so the oracle is more accurate than the code under
// test. Nothing on the inference path calls these.

enum Reference {
    /// Direct 2-D convolution, NCHW input [N, C, H, W], weight [Cout, C, k, k], zero padding:
    ///
    ///     y[n, o, oy, ox] = bias[o] + sum over c, ky, kx of
    ///                       w[o, c, ky, kx] * x[n, c, oy*s - p + ky, ox*s - p + kx]
    static func conv2D(
        input: [Float], batch: Int, inChannels: Int, height: Int, width: Int,
        weight: [Float], bias: [Float]?, outChannels: Int,
        kernelSize k: Int, stride s: Int, padding p: Int
    ) -> [Float] {
        precondition(input.count == batch * inChannels * height * width)
        precondition(weight.count == outChannels * inChannels * k * k)
        let outputHeight = (height + 2 * p - k) / s + 1
        let outputWidth = (width + 2 * p - k) / s + 1
        var output = [Float](repeating: 0, count: batch * outChannels * outputHeight * outputWidth)
        for n in 0..<batch {
            for o in 0..<outChannels {
                for oy in 0..<outputHeight {
                    for ox in 0..<outputWidth {
                        var sum = Double(bias?[o] ?? 0)
                        for c in 0..<inChannels {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy * s - p + ky
                                    let ix = ox * s - p + kx
                                    if iy < 0 || iy >= height || ix < 0 || ix >= width {
                                        continue
                                    }
                                    let x = input[((n * inChannels + c) * height + iy) * width + ix]
                                    let w = weight[((o * inChannels + c) * k + ky) * k + kx]
                                    sum += Double(w) * Double(x)
                                }
                            }
                        }
                        output[((n * outChannels + o) * outputHeight + oy) * outputWidth + ox] = Float(sum)
                    }
                }
            }
        }
        return output
    }

    /// C = A B for row-major A [m, k] and B [k, n].
    static func matmul(a: [Float], b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        precondition(a.count == m * k && b.count == k * n)
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for l in 0..<k {
                    sum += Double(a[i * k + l]) * Double(b[l * n + j])
                }
                c[i * n + j] = Float(sum)
            }
        }
        return c
    }

    /// y = x W^T + b for input [N, in], weight [out, in] and bias [out] (PyTorch Linear).
    static func fullyConnected(
        input: [Float], batch: Int, inFeatures: Int, weight: [Float], bias: [Float], outFeatures: Int
    ) -> [Float] {
        precondition(weight.count == outFeatures * inFeatures && bias.count == outFeatures)
        var transposed = [Float](repeating: 0, count: inFeatures * outFeatures)
        for o in 0..<outFeatures {
            for i in 0..<inFeatures {
                transposed[i * outFeatures + o] = weight[o * inFeatures + i]
            }
        }
        var output = matmul(a: input, b: transposed, m: batch, n: outFeatures, k: inFeatures)
        for n in 0..<batch {
            for o in 0..<outFeatures {
                output[n * outFeatures + o] += bias[o]
            }
        }
        return output
    }

    /// Inference batch norm over [N, C, planeSize]:
    /// y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c].
    static func batchNorm(
        input: [Float], channels: Int, planeSize: Int,
        weight gamma: [Float], bias beta: [Float], runningMean mean: [Float],
        runningVariance variance: [Float], eps: Float
    ) -> [Float] {
        var output = input
        for index in input.indices {
            let c = (index / planeSize) % channels
            let normalized = (Double(input[index]) - Double(mean[c]))
                / (Double(variance[c]) + Double(eps)).squareRoot()
            output[index] = Float(normalized * Double(gamma[c]) + Double(beta[c]))
        }
        return output
    }

    /// PReLU over [N, C, planeSize]: y = x if x > 0, else slope[c] * x.
    static func prelu(input: [Float], channels: Int, planeSize: Int, slope: [Float]) -> [Float] {
        var output = input
        for index in input.indices {
            let c = (index / planeSize) % channels
            if input[index] <= 0 {
                output[index] = slope[c] * input[index]
            }
        }
        return output
    }
}
