// Parametric ReLU.

/// PReLU with one learned slope per channel (PyTorch `PReLU(C)`, ONNX `PRelu` with slope
/// [C, 1, 1]):
///
///     y = x           if x > 0
///     y = slope[c] * x otherwise
struct PReLU: Sendable {
    let slope: [Float]

    var channels: Int { slope.count }

    func callAsFunction(_ x: consuming FeatureMap) -> FeatureMap {
        precondition(x.channels == channels, "PReLU: input has \(x.channels) channels, expected \(channels)")
        var y = x
        preluChannels(&y.values, channels: channels, planeSize: y.planeSize, slope: slope)
        return y
    }
}
