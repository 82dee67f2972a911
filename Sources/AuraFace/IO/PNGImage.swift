// PNG reading and writing through libpng's classic API. The libpng calls live in the C target
// CPNGShim, which owns the setjmp point that libpng's error handling longjmps to, so an error
// in a damaged file never unwinds Swift frames.

import CPNGShim
import Foundation

/// Reads PNG files into `RGBImage` and writes `RGBImage` as PNG.
///
/// Decoding keeps the stored sample values. Every color type (gray, gray+alpha, RGB, RGBA,
/// palette), bit depths 1 to 16 and Adam7 interlacing become 8-bit RGB. 16-bit samples are
/// scaled as `v * 255 / 65535` (rounded), and gray is copied to all three channels.
/// Alpha (an alpha channel or a tRNS chunk) is dropped, not composited onto a background,
/// so a transparent pixel keeps the color stored under it. No gamma (gAMA), chromaticity
/// (cHRM) or ICC profile correction is applied, which matches how face-recognition
/// pipelines that load images with OpenCV or Pillow feed pixels to the network.
public enum PNGImage {
    /// The largest image `read` and `decode` accept by default: 100 megapixels, which decode
    /// to 300 MB of RGB samples. The check uses the declared width and height in IHDR, before
    /// any pixel buffer is allocated. libpng also allocates row buffers of up to 8 bytes per
    /// pixel of one row (16-bit RGBA), which matters only for extremely wide images.
    public static let defaultMaxPixelCount = 100_000_000

    /// The PNG color types of the IHDR chunk.
    public enum ColorType: Int, Sendable {
        case gray = 0
        case rgb = 2
        case palette = 3
        case grayAlpha = 4
        case rgba = 6
    }

    /// The IHDR fields that describe a PNG's pixel layout.
    public struct Header: Sendable, Equatable {
        public var width: Int
        public var height: Int
        /// Bits per sample (per palette index for `.palette`): 1, 2, 4, 8 or 16.
        public var bitDepth: Int
        public var colorType: ColorType
        /// True for Adam7 interlacing.
        public var interlaced: Bool
    }

    /// Reads and decodes the PNG file at `url` into 8-bit RGB.
    ///
    /// - Throws: `PNGError` naming the file: `.fileNotFound`, `.unreadable`, `.notPNG`,
    ///   `.truncated`, `.corrupt`, `.tooLarge` when the declared width * height exceeds
    ///   `maxPixelCount`, or `.outOfMemory`.
    public static func read(
        contentsOf url: URL, maxPixelCount: Int = defaultMaxPixelCount
    ) throws(PNGError) -> RGBImage {
        let bytes = try readFile(url)
        return try decode(bytes, path: url.path, maxPixelCount: maxPixelCount)
    }

    /// Decodes PNG bytes into 8-bit RGB. `path` names the source in error messages.
    ///
    /// - Throws: `PNGError` as for `read(contentsOf:maxPixelCount:)`.
    public static func decode(
        _ bytes: [UInt8], path: String, maxPixelCount: Int = defaultMaxPixelCount
    ) throws(PNGError) -> RGBImage {
        let header = try self.header(of: bytes, path: path)
        let (pixelCount, overflow) = header.width.multipliedReportingOverflow(by: header.height)
        guard !overflow, pixelCount <= maxPixelCount else {
            throw .tooLarge(
                path: path, width: header.width, height: header.height, maxPixelCount: maxPixelCount)
        }

        var status = PNG_SHIM_OK
        var message = [CChar](repeating: 0, count: 256)
        let pixels = [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { buffer, count in
            status = bytes.withUnsafeBufferPointer { input in
                message.withUnsafeMutableBufferPointer { text in
                    png_shim_decode_rgb8(
                        input.baseAddress, input.count, buffer.baseAddress, pixelCount * 3,
                        text.baseAddress, text.count)
                }
            }
            // The C side writes every byte on success; on failure the contents are discarded.
            count = status == PNG_SHIM_OK ? pixelCount * 3 : 0
        }
        try check(status, message: message, path: path)
        do {
            return try RGBImage(width: header.width, height: header.height, pixels: pixels)
        } catch {
            throw .corrupt(path: path, reason: error.description)
        }
    }

    /// Reads the signature and IHDR chunk without decoding pixels.
    ///
    /// - Throws: `PNGError.notPNG`, `.truncated` or `.corrupt` (a zero width or height, or
    ///   libpng's rejection of an out-of-range side or an invalid bit depth and color type pair).
    public static func header(of bytes: [UInt8], path: String) throws(PNGError) -> Header {
        // libpng reports a zero side only as "Invalid IHDR data", so that case is named here.
        // IHDR's width and height are the big-endian words at bytes 16 and 20.
        let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        if bytes.count >= 24, bytes[0..<8].elementsEqual(signature),
            bytes[12..<16].elementsEqual("IHDR".utf8)
        {
            let width = bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }
            let height = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
            guard width > 0, height > 0 else {
                throw .corrupt(
                    path: path,
                    reason: "IHDR declares \(width)x\(height) pixels; expected a width and height of 1 or more")
            }
        }
        var header = png_shim_header()
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { input in
            message.withUnsafeMutableBufferPointer { text in
                png_shim_read_header(input.baseAddress, input.count, &header, text.baseAddress, text.count)
            }
        }
        try check(status, message: message, path: path)
        guard let colorType = ColorType(rawValue: Int(header.color_type)) else {
            throw .corrupt(path: path, reason: "IHDR has color type \(header.color_type)")
        }
        return Header(
            width: Int(header.width), height: Int(header.height), bitDepth: Int(header.bit_depth),
            colorType: colorType, interlaced: header.interlace_type != 0)
    }

    /// Encodes an image as an 8-bit RGB, non-interlaced PNG.
    ///
    /// - Throws: `PNGError.encodingFailed` when libpng rejects the image (a side larger than
    ///   2^31 - 1) or memory runs out.
    public static func encode(_ image: RGBImage) throws(PNGError) -> [UInt8] {
        guard let width = UInt32(exactly: image.width), let height = UInt32(exactly: image.height)
        else {
            throw .encodingFailed(reason: "\(image.width)x\(image.height) exceeds PNG's size limit")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            message.withUnsafeMutableBufferPointer { text in
                png_shim_encode_rgb8(
                    pixels.baseAddress, width, height, &output, &outputSize, text.baseAddress,
                    text.count)
            }
        }
        defer { png_shim_free(output) }
        switch status {
        case PNG_SHIM_OK:
            guard let output else { return [] }
            return [UInt8](UnsafeBufferPointer(start: output, count: outputSize))
        case PNG_SHIM_OUT_OF_MEMORY:
            throw .encodingFailed(reason: "out of memory")
        default:
            throw .encodingFailed(reason: text(message))
        }
    }

    /// Writes an image as an 8-bit RGB PNG, atomically: to a temporary file in the same folder,
    /// then renamed over `url`.
    ///
    /// - Throws: `PNGError.unwritable` naming `url`, or an encoding error.
    public static func write(_ image: RGBImage, to url: URL) throws(PNGError) {
        let bytes = try encode(image)
        do {
            try writeFileAtomically(bytes, to: url)
        } catch let .unwritable(_, reason) {
            throw .unwritable(path: url.path, reason: reason)
        } catch {
            throw .unwritable(path: url.path, reason: error.description)
        }
    }

    private static func readFile(_ url: URL) throws(PNGError) -> [UInt8] {
        do {
            return try readFileBytes(url)
        } catch {
            switch error {
            case .notFound: throw .fileNotFound(path: url.path)
            case let .failed(reason): throw .unreadable(path: url.path, reason: reason)
            }
        }
    }

    private static func check(
        _ status: png_shim_status, message: [CChar], path: String
    ) throws(PNGError) {
        let reason = text(message)
        switch status {
        case PNG_SHIM_OK:
            return
        case PNG_SHIM_NOT_PNG:
            throw .notPNG(path: path, reason: reason)
        case PNG_SHIM_TRUNCATED:
            throw .truncated(path: path, reason: reason)
        case PNG_SHIM_OUT_OF_MEMORY:
            throw .outOfMemory(path: path)
        default:
            throw .corrupt(path: path, reason: reason)
        }
    }

    private static func text(_ message: [CChar]) -> String {
        let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Errors from reading or writing PNG files. Each names the file.
public enum PNGError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The data does not start with the PNG signature.
    case notPNG(path: String, reason: String)
    /// The data ends before the IEND chunk.
    case truncated(path: String, reason: String)
    /// libpng rejected the data (bad CRC, bad IHDR, invalid compressed data).
    case corrupt(path: String, reason: String)
    /// The declared width * height exceeds the pixel limit.
    case tooLarge(path: String, width: Int, height: Int, maxPixelCount: Int)
    case outOfMemory(path: String)
    case encodingFailed(reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            "'\(path)': file not found"
        case let .unreadable(path, reason):
            "cannot read '\(path)': \(reason)"
        case let .notPNG(path, reason):
            "'\(path)' is not a PNG file: \(reason)"
        case let .truncated(path, reason):
            "'\(path)' is a truncated PNG file (\(reason)); the file was cut short, copy it again"
        case let .corrupt(path, reason):
            "'\(path)' is a corrupt PNG file: \(reason)"
        case let .tooLarge(path, width, height, maxPixelCount):
            "'\(path)' declares \(width)x\(height) pixels, more than the limit of "
                + "\(maxPixelCount) pixels; crop or downscale it first"
        case let .outOfMemory(path):
            "'\(path)': out of memory while decoding the PNG"
        case let .encodingFailed(reason):
            "PNG encoding failed: \(reason)"
        case let .unwritable(path, reason):
            "cannot write '\(path)': \(reason)"
        }
    }
}
