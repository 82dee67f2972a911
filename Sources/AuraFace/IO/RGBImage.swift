/// An 8-bit RGB image: `width * height * 3` bytes, row-major, channels interleaved
/// (R, G, B of the top-left pixel first).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// The samples, `pixels[(y * width + x) * 3 + c]` for channel `c` (0 R, 1 G, 2 B).
    public let pixels: [UInt8]

    /// Wraps interleaved RGB samples.
    ///
    /// - Throws: `ImageInputError.pixelCountMismatch` when `pixels.count` is not
    ///   `width * height * 3`, or either side is not positive.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImageInputError) {
        let (area, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !overflow, area <= Int.max / 3, pixels.count == area * 3 else {
            throw .pixelCountMismatch(width: width, height: height, found: pixels.count)
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// The order of the color planes the network reads.
public enum ChannelOrder: String, Sendable {
    /// Plane 0 is red, as in arcface_torch models (AuraFace).
    case rgb = "RGB"
    /// Plane 0 is blue, as in models trained on OpenCV-loaded images.
    case bgr = "BGR"
}

/// Errors from turning images into network input.
public enum ImageInputError: Error, Equatable, CustomStringConvertible {
    /// The sample count does not match the dimensions.
    case pixelCountMismatch(width: Int, height: Int, found: Int)
    /// The image is not the square size the network takes.
    case sizeMismatch(expected: Int, width: Int, height: Int)
    /// The network does not take 3-channel input.
    case unsupportedInputChannels(Int)
    /// The metadata names a channel order other than RGB or BGR.
    case unsupportedChannelOrder(String)
    /// A `PixelBuffer`'s dimensions, row stride and byte count do not fit together.
    case invalidPixelBuffer(width: Int, height: Int, format: String, bytesPerRow: Int, found: Int)

    public var description: String {
        switch self {
        case let .pixelCountMismatch(width, height, found):
            "a \(width)x\(height) RGB image needs \(width)*\(height)*3 samples with both sides "
                + "positive, found \(found) samples"
        case let .sizeMismatch(expected, width, height):
            "image is \(width)x\(height) pixels, but the model takes aligned \(expected)x\(expected) "
                + "face crops; align and crop the face to \(expected)x\(expected) first"
        case let .unsupportedInputChannels(channels):
            "the model takes \(channels)-channel input, but images supply 3 channels (RGB)"
        case let .unsupportedChannelOrder(order):
            "channel order '\(order)' is not supported, expected RGB or BGR"
        case let .invalidPixelBuffer(width, height, format, bytesPerRow, found):
            "a \(width)x\(height) \(format) pixel buffer with \(bytesPerRow) bytes per row needs "
                + "both sides positive, at least one row's bytes per row, and "
                + "(height - 1) * bytesPerRow + width * channels bytes, found \(found) bytes"
        }
    }
}

extension RGBImage {
    /// Appends the image as one `[3, height, width]` planar slice of an NCHW tensor: sample `v`
    /// becomes `(v - mean) * scale`, and plane 0 is red for `.rgb` or blue for `.bgr`.
    public func appendNormalizedPlanes(
        to tensor: inout [Float], mean: Float, scale: Float, channelOrder: ChannelOrder
    ) {
        let planeSize = width * height
        let sourceChannels = channelOrder == .rgb ? [0, 1, 2] : [2, 1, 0]
        let start = tensor.count
        tensor.reserveCapacity(start + 3 * planeSize)
        for sourceChannel in sourceChannels {
            for index in 0..<planeSize {
                tensor.append((Float(pixels[index * 3 + sourceChannel]) - mean) * scale)
            }
        }
    }

    /// Builds the network's normalized input for a batch of face crops: an NCHW `[N, 3, S, S]`
    /// tensor (`S` the metadata's input size) with `(v - inputMean) * inputScale` applied and
    /// the planes in the metadata's channel order. This is the tensor the stem reads, whether or not
    /// the source ONNX graph did the normalization itself.
    ///
    /// - Throws: `ImageInputError.sizeMismatch` for the first image that is not `S x S`,
    ///   `.unsupportedInputChannels` when the network does not take 3 channels.
    public static func normalizedBatch(
        _ images: [RGBImage], metadata: WeightFileMetadata
    ) throws(ImageInputError) -> [Float] {
        let architecture = metadata.architecture
        guard architecture.inputChannels == 3 else {
            throw .unsupportedInputChannels(architecture.inputChannels)
        }
        guard let channelOrder = ChannelOrder(rawValue: metadata.channelOrder) else {
            throw .unsupportedChannelOrder(metadata.channelOrder)
        }
        let size = architecture.inputSize
        var tensor: [Float] = []
        tensor.reserveCapacity(images.count * 3 * size * size)
        for image in images {
            guard image.width == size, image.height == size else {
                throw .sizeMismatch(expected: size, width: image.width, height: image.height)
            }
            image.appendNormalizedPlanes(
                to: &tensor, mean: metadata.inputMean, scale: metadata.inputScale,
                channelOrder: channelOrder)
        }
        return tensor
    }
}
