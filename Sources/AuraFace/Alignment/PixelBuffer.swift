/// The channel layout of 8-bit interleaved pixels.
public enum PixelFormat: String, Sendable, CaseIterable {
    /// Red, green, blue: what PNG and JPEG decoders return.
    case rgb = "RGB"
    /// Blue, green, red: what OpenCV's `imread` returns.
    case bgr = "BGR"
    /// Red, green, blue, alpha. Alpha is ignored.
    case rgba = "RGBA"
    /// Blue, green, red, alpha, as in many camera frame formats. Alpha is ignored.
    case bgra = "BGRA"
    /// One luma sample per pixel, read as R = G = B.
    case gray = "gray"

    /// Bytes per pixel.
    public var channelCount: Int {
        switch self {
        case .rgb, .bgr: 3
        case .rgba, .bgra: 4
        case .gray: 1
        }
    }

    /// The byte offsets of red, green and blue within a pixel.
    var rgbOffsets: (red: Int, green: Int, blue: Int) {
        switch self {
        case .rgb, .rgba: (0, 1, 2)
        case .bgr, .bgra: (2, 1, 0)
        case .gray: (0, 0, 0)
        }
    }
}

/// An 8-bit image in a caller's memory layout: rows of `bytesPerRow` bytes (which may include
/// padding after the last pixel), pixels interleaved in `format` order. Use it to pass frames
/// from other decoders or cameras without repacking them.
public struct PixelBuffer: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let format: PixelFormat
    /// The distance in bytes from the start of one row to the start of the next.
    public let bytesPerRow: Int
    /// The pixel bytes, row `y` starting at `y * bytesPerRow`.
    public let bytes: [UInt8]

    /// Wraps pixel bytes.
    ///
    /// - Parameter bytesPerRow: nil for tightly packed rows (`width * format.channelCount`).
    /// - Throws: `ImageInputError.invalidPixelBuffer` when a side is not positive, the stride is
    ///   shorter than a row, or `bytes` ends before the last pixel of the last row.
    public init(
        width: Int, height: Int, format: PixelFormat, bytesPerRow: Int? = nil, bytes: [UInt8]
    ) throws(ImageInputError) {
        let channels = format.channelCount
        let (rowBytes, rowOverflow) = width.multipliedReportingOverflow(by: channels)
        let stride = bytesPerRow ?? rowBytes
        let (lastRowStart, startOverflow) = (height - 1).multipliedReportingOverflow(by: stride)
        let (needed, neededOverflow) = lastRowStart.addingReportingOverflow(rowBytes)
        guard width > 0, height > 0, !rowOverflow, stride >= rowBytes, !startOverflow,
            !neededOverflow, bytes.count >= needed
        else {
            throw .invalidPixelBuffer(
                width: width, height: height, format: format.rawValue, bytesPerRow: stride,
                found: bytes.count)
        }
        self.width = width
        self.height = height
        self.format = format
        self.bytesPerRow = stride
        self.bytes = bytes
    }

    /// Wraps an `RGBImage` without copying its pixels.
    public init(_ image: RGBImage) {
        width = image.width
        height = image.height
        format = .rgb
        bytesPerRow = image.width * 3
        bytes = image.pixels
    }

    /// Returns the image as packed 8-bit RGB: channels reordered, alpha dropped, gray copied to
    /// all three channels.
    public func rgbImage() -> RGBImage {
        let (red, green, blue) = format.rgbOffsets
        let channels = format.channelCount
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let source = y * bytesPerRow + x * channels
                let target = (y * width + x) * 3
                pixels[target] = bytes[source + red]
                pixels[target + 1] = bytes[source + green]
                pixels[target + 2] = bytes[source + blue]
            }
        }
        // The dimensions were checked by init, so this cannot throw.
        return try! RGBImage(width: width, height: height, pixels: pixels)
    }
}
