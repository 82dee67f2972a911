// The activation tensor passed between layers.

/// A batch of float32 activations in NCHW layout: N images, C channels, H rows, W columns,
/// stored contiguously with W varying fastest. A [N, C] matrix (after `flatten`, or the
/// embedding) is a feature map with H = W = 1.
struct FeatureMap: Sendable {
    var batch: Int
    var channels: Int
    var height: Int
    var width: Int
    var values: [Float]

    init(batch: Int, channels: Int, height: Int, width: Int, values: [Float]) {
        precondition(values.count == batch * channels * height * width,
            "\(values.count) values for shape [\(batch), \(channels), \(height), \(width)]")
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.values = values
    }

    /// H * W, the length of one channel plane.
    var planeSize: Int { height * width }
    /// C * H * W, the length of one image.
    var imageSize: Int { channels * height * width }
    /// [N, C, H, W].
    var shape: [Int] { [batch, channels, height, width] }

    /// Residual addition, y = a + b, for two feature maps of the same shape. Reuses `a`'s
    /// storage when the caller gives it up.
    static func + (a: consuming FeatureMap, b: borrowing FeatureMap) -> FeatureMap {
        precondition(a.shape == b.shape, "residual add of \(a.shape) and \(b.shape)")
        var sum = a
        addElementwise(&sum.values, b.values)
        return sum
    }
}

/// Flattens [N, C, H, W] to [N, C*H*W] (as torch.flatten(x, 1)) without moving any value:
/// NCHW storage already lists each image's C*H*W values in that order.
func flatten(_ x: consuming FeatureMap) -> FeatureMap {
    var flat = x
    flat.channels = flat.imageSize
    flat.height = 1
    flat.width = 1
    return flat
}
