// Binary Netpbm images: PPM (P6, RGB) and PGM (P5, gray), as specified in the netpbm manual's
// ppm(5) and pgm(5) pages. Plain-text P3/P2 and PAM (P7) are not read.

import Foundation

/// Reads binary PPM (P6) and PGM (P5) files into 8-bit `RGBImage`s, and writes P6.
///
/// Samples with a maxval other than 255 are scaled to 0...255 as `v * 255 / maxval`, rounded
/// to nearest. Maxvals above 255 use two bytes per sample, most significant first. Gray is
/// copied to all three channels. Only the first image of a multi-image file is read.
public enum PPMImage {
    /// The default pixel limit, the same as PNG's and JPEG's: 100 megapixels.
    public static let defaultMaxPixelCount = 100_000_000

    /// Reads and decodes the P6 or P5 file at `url`.
    ///
    /// - Throws: `PPMError` naming the file.
    public static func read(
        contentsOf url: URL, maxPixelCount: Int = defaultMaxPixelCount
    ) throws(PPMError) -> RGBImage {
        let bytes: [UInt8]
        do {
            bytes = try readFileBytes(url)
        } catch {
            switch error {
            case .notFound: throw .fileNotFound(path: url.path)
            case let .failed(reason): throw .unreadable(path: url.path, reason: reason)
            }
        }
        return try decode(bytes, path: url.path, maxPixelCount: maxPixelCount)
    }

    /// Decodes P6 or P5 bytes. `path` names the source in error messages.
    ///
    /// - Throws: `PPMError.notNetpbm` for another magic number, `.invalidHeader` for a
    ///   missing or out-of-range width, height or maxval, `.tooLarge`, `.truncated` when the
    ///   samples end early, `.sampleAboveMaxval` for a sample larger than maxval.
    public static func decode(
        _ bytes: [UInt8], path: String, maxPixelCount: Int = defaultMaxPixelCount
    ) throws(PPMError) -> RGBImage {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "P"),
            bytes[1] == UInt8(ascii: "6") || bytes[1] == UInt8(ascii: "5")
        else {
            throw .notNetpbm(path: path, magic: String(decoding: bytes.prefix(2), as: UTF8.self))
        }
        let channels = bytes[1] == UInt8(ascii: "6") ? 3 : 1
        var reader = HeaderReader(bytes: bytes, offset: 2)
        guard let width = reader.nextInteger(), let height = reader.nextInteger(),
            let maxval = reader.nextInteger()
        else {
            throw .invalidHeader(path: path, reason: "expected width, height and maxval as decimal numbers")
        }
        guard width > 0, height > 0 else {
            throw .invalidHeader(path: path, reason: "width and height must be positive, found \(width)x\(height)")
        }
        guard (1...65535).contains(maxval) else {
            throw .invalidHeader(path: path, reason: "maxval must be 1...65535, found \(maxval)")
        }
        // Exactly one whitespace byte separates maxval from the samples.
        guard reader.offset < bytes.count, HeaderReader.isWhitespace(bytes[reader.offset]) else {
            throw .truncated(path: path, expected: 1, found: 0)
        }
        let start = reader.offset + 1
        let (pixelCount, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixelCount <= maxPixelCount else {
            throw .tooLarge(path: path, width: width, height: height, maxPixelCount: maxPixelCount)
        }
        let bytesPerSample = maxval > 255 ? 2 : 1
        let sampleCount = pixelCount * channels
        let expected = sampleCount * bytesPerSample
        guard bytes.count - start >= expected else {
            throw .truncated(path: path, expected: expected, found: bytes.count - start)
        }

        var pixels = [UInt8](repeating: 0, count: pixelCount * 3)
        for index in 0..<sampleCount {
            let at = start + index * bytesPerSample
            let value = bytesPerSample == 2 ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : Int(bytes[at])
            guard value <= maxval else {
                throw .sampleAboveMaxval(path: path, sample: value, maxval: maxval)
            }
            let scaled = maxval == 255 ? value : (value * 255 * 2 + maxval) / (2 * maxval)
            if channels == 3 {
                pixels[index] = UInt8(scaled)
            } else {
                pixels[3 * index] = UInt8(scaled)
                pixels[3 * index + 1] = UInt8(scaled)
                pixels[3 * index + 2] = UInt8(scaled)
            }
        }
        return try! RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Encodes an image as binary PPM (P6, maxval 255).
    public static func encode(_ image: RGBImage) -> [UInt8] {
        Array("P6\n\(image.width) \(image.height)\n255\n".utf8) + image.pixels
    }

    /// Reads the whitespace-separated decimal fields of a Netpbm header, skipping comments
    /// (from `#` to the end of the line).
    private struct HeaderReader {
        let bytes: [UInt8]
        var offset: Int

        static func isWhitespace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0B || byte == 0x0C || byte == 0x0D
        }

        mutating func nextInteger() -> Int? {
            while offset < bytes.count {
                if Self.isWhitespace(bytes[offset]) {
                    offset += 1
                } else if bytes[offset] == UInt8(ascii: "#") {
                    while offset < bytes.count, bytes[offset] != 0x0A, bytes[offset] != 0x0D {
                        offset += 1
                    }
                } else {
                    break
                }
            }
            var value = 0
            var digits = 0
            while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
                value = value * 10 + Int(bytes[offset] - UInt8(ascii: "0"))
                digits += 1
                offset += 1
                if value > Int(Int32.max) {
                    return nil
                }
            }
            return digits > 0 ? value : nil
        }
    }
}

/// Errors from reading PPM and PGM files. Each names the file.
public enum PPMError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The magic number is not P6 or P5.
    case notNetpbm(path: String, magic: String)
    case invalidHeader(path: String, reason: String)
    /// The header declares more pixels than the limit.
    case tooLarge(path: String, width: Int, height: Int, maxPixelCount: Int)
    /// Fewer sample bytes than the header declares.
    case truncated(path: String, expected: Int, found: Int)
    case sampleAboveMaxval(path: String, sample: Int, maxval: Int)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            "image file '\(path)' not found"
        case let .unreadable(path, reason):
            "cannot read image file '\(path)': \(reason)"
        case let .notNetpbm(path, magic):
            "'\(path)' is not a binary PPM or PGM file: expected magic number P6 or P5, found '\(magic)'"
        case let .invalidHeader(path, reason):
            "invalid PPM/PGM header in '\(path)': \(reason)"
        case let .tooLarge(path, width, height, maxPixelCount):
            "'\(path)' is \(width)x\(height) pixels, above the limit of \(maxPixelCount) pixels"
        case let .truncated(path, expected, found):
            "'\(path)' is truncated: expected \(expected) bytes of samples, found \(found)"
        case let .sampleAboveMaxval(path, sample, maxval):
            "'\(path)' has a sample of \(sample), above its maxval \(maxval)"
        }
    }
}
