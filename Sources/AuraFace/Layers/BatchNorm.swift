// Inference-mode batch normalization.

/// Batch normalization with frozen statistics (PyTorch `BatchNorm2d`/`BatchNorm1d` in eval
/// mode, ONNX `BatchNormalization`):
///
///     y = (x - runningMean[c]) / sqrt(runningVariance[c] + eps) * weight[c] + bias[c]
///
/// precomputed as y = x * scale[c] + shift[c] with scale = weight / sqrt(var + eps) and
/// shift = bias - runningMean * scale. Works on [N, C, H, W] and on [N, C] (H = W = 1).
struct BatchNorm: Sendable {
    let scale: [Float]
    let shift: [Float]

    var channels: Int { scale.count }

    /// Precomputes scale and shift in Double. `weight` is PyTorch's gamma and `bias` its beta.
    init(weight: [Float], bias: [Float], runningMean: [Float], runningVariance: [Float], eps: Float) {
        let channels = weight.count
        precondition(bias.count == channels && runningMean.count == channels
            && runningVariance.count == channels, "BatchNorm: parameter sizes differ")
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let s = Double(weight[c]) / (Double(runningVariance[c]) + Double(eps)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(bias[c]) - Double(runningMean[c]) * s)
        }
        self.scale = scale
        self.shift = shift
    }

    func callAsFunction(_ x: consuming FeatureMap) -> FeatureMap {
        precondition(x.channels == channels, "BatchNorm: input has \(x.channels) channels, expected \(channels)")
        var y = x
        scaleShiftChannels(&y.values, channels: channels, planeSize: y.planeSize, scale: scale, shift: shift)
        return y
    }
}

extension Optional where Wrapped == BatchNorm {
    /// Applies the batch norm when present. A batch norm that the exporter folded into the
    /// convolution before it is nil: that convolution's bias already did its work.
    func callAsFunction(_ x: consuming FeatureMap) -> FeatureMap {
        guard let norm = self else {
            return x
        }
        return norm(x)
    }
}
