// Element-wise kernels with one parameter per channel, in place.
//
// Layout: `values` contains N images of C channel planes, each plane `planeSize` contiguous
// floats ([N, C, H*W], or [N, C] with planeSize 1). N is values.count / (C * planeSize).
// Each kernel checks that layout once and then walks the planes with pointers. The inner loop
// over one plane has no dependency between iterations, so the compiler vectorizes it.

/// y = x * scale[c] + shift[c]: an inference-mode batch norm with precomputed scale and shift.
func scaleShiftChannels(
    _ values: inout [Float], channels: Int, planeSize: Int, scale: [Float], shift: [Float]
) {
    precondition(scale.count == channels && shift.count == channels, "scaleShift: \(channels) channels")
    scale.withUnsafeBufferPointer { scale in
        shift.withUnsafeBufferPointer { shift in
            forEachPlane(&values, channels: channels, planeSize: planeSize) { plane, channel in
                let a = scale[channel]
                let b = shift[channel]
                for i in plane.indices {
                    plane[i] = plane[i] * a + b
                }
            }
        }
    }
}

/// y = x + bias[c].
func addBiasChannels(_ values: inout [Float], channels: Int, planeSize: Int, bias: [Float]) {
    precondition(bias.count == channels, "addBias: \(bias.count) biases for \(channels) channels")
    bias.withUnsafeBufferPointer { bias in
        forEachPlane(&values, channels: channels, planeSize: planeSize) { plane, channel in
            let b = bias[channel]
            for i in plane.indices {
                plane[i] += b
            }
        }
    }
}

/// y = x if x > 0, else slope[c] * x (PyTorch's PReLU with one slope per channel).
func preluChannels(_ values: inout [Float], channels: Int, planeSize: Int, slope: [Float]) {
    precondition(slope.count == channels, "prelu: \(slope.count) slopes for \(channels) channels")
    slope.withUnsafeBufferPointer { slope in
        forEachPlane(&values, channels: channels, planeSize: planeSize) { plane, channel in
            let a = slope[channel]
            for i in plane.indices {
                let x = plane[i]
                plane[i] = x > 0 ? x : a * x
            }
        }
    }
}

/// values[i] += other[i]: the residual addition of two tensors of the same shape.
func addElementwise(_ values: inout [Float], _ other: [Float]) {
    precondition(values.count == other.count, "add: \(values.count) and \(other.count) elements")
    other.withUnsafeBufferPointer { other in
        values.withUnsafeMutableBufferPointer { values in
            for i in values.indices {
                values[i] += other[i]
            }
        }
    }
}

/// Calls `body` with each channel plane of `values` and its channel index.
private func forEachPlane(
    _ values: inout [Float], channels: Int, planeSize: Int,
    _ body: (UnsafeMutableBufferPointer<Float>, Int) -> Void
) {
    precondition(channels >= 1 && planeSize >= 1, "empty channel layout")
    precondition(values.count % (channels * planeSize) == 0,
        "\(values.count) values are not a whole number of [\(channels), \(planeSize)] images")
    let planes = values.count / planeSize
    // Every plane p covers values[p * planeSize ..< (p + 1) * planeSize], inside the array
    // because planes * planeSize == values.count.
    values.withUnsafeMutableBufferPointer { buffer in
        for p in 0..<planes {
            let plane = UnsafeMutableBufferPointer(
                rebasing: buffer[(p * planeSize)..<((p + 1) * planeSize)])
            body(plane, p % channels)
        }
    }
}

/// The per-channel layers that follow a convolution, applied by the convolution to each output
/// plane right after it writes it, while the plane is still in cache, instead of in separate
/// passes over the whole activation.
///
/// The steps run in the order of the network: a batch norm that was not folded into the
/// convolution's bias (y = x * scale[c] + shift[c]), then PReLU (slope[c]), then the residual
/// addition of the image at `residual`, laid out as the output [C, H, W]. Each step computes
/// exactly what its layer computes alone (`scaleShiftChannels`, `preluChannels`,
/// `addElementwise`), so a fused forward pass gives the same bits as the traced one, which
/// runs every layer separately.
struct ChannelEpilogue {
    var normalization: ChannelAffine? = nil
    var slope: UnsafePointer<Float>? = nil
    var residual: UnsafePointer<Float>? = nil

    /// Applies the steps to the `count` values of channel `channel` at `plane`.
    func apply(to plane: UnsafeMutablePointer<Float>, count: Int, channel: Int) {
        if let normalization {
            let a = normalization.scale[channel]
            let b = normalization.shift[channel]
            for i in 0..<count {
                plane[i] = plane[i] * a + b
            }
        }
        if let slope {
            let a = slope[channel]
            for i in 0..<count {
                let x = plane[i]
                plane[i] = x > 0 ? x : a * x
            }
        }
        if let residual {
            let other = residual + channel * count
            for i in 0..<count {
                plane[i] += other[i]
            }
        }
    }
}
