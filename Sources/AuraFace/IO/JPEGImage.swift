// JPEG decoding through TurboJPEG's tj* API (libjpeg-turbo 2.x, as Debian 12 ships it), which
// returns error codes instead of calling exit() or longjmp-ing through Swift frames.

import CTurboJPEG
import Foundation

/// Reads JPEG files into 8-bit `RGBImage`s.
///
/// Baseline and progressive JPEGs in YCbCr, RGB or grayscale decode to RGB, with gray copied to
/// all three channels. Decoding uses libjpeg's defaults: the accurate integer IDCT and smooth
/// chroma upsampling. libjpeg-based readers such as OpenCV's `imread` use the same defaults.
/// The EXIF orientation tag (0x0112 in the APP1 Exif segment) is applied, so the image comes
/// out the way viewers show it, as `imread` returns it. CMYK and YCCK JPEGs are rejected.
/// Any libjpeg warning, such as data that ends early, fails the decode, so a truncated file
/// is never returned with grey rows in place of the missing data.
public enum JPEGImage {
    /// The largest image `read` and `decode` accept by default: 100 megapixels, which decode to
    /// 300 MB of RGB samples. The check uses the frame header's width and height, before any
    /// pixel buffer is allocated.
    public static let defaultMaxPixelCount = 100_000_000

    /// Reads and decodes the JPEG file at `url`.
    ///
    /// - Parameter applyOrientation: false keeps the stored pixel order and ignores EXIF.
    /// - Throws: `JPEGError` naming the file.
    public static func read(
        contentsOf url: URL, maxPixelCount: Int = defaultMaxPixelCount,
        applyOrientation: Bool = true
    ) throws(JPEGError) -> RGBImage {
        let bytes: [UInt8]
        do {
            bytes = try readFileBytes(url)
        } catch {
            switch error {
            case .notFound: throw .fileNotFound(path: url.path)
            case let .failed(reason): throw .unreadable(path: url.path, reason: reason)
            }
        }
        return try decode(
            bytes, path: url.path, maxPixelCount: maxPixelCount, applyOrientation: applyOrientation)
    }

    /// Decodes JPEG bytes. `path` names the source in error messages.
    ///
    /// - Throws: `JPEGError.notJPEG` when the bytes do not start with a JPEG SOI marker.
    ///   `.corrupt` when the header or data is invalid, `.truncated` when the data ends early.
    ///   `.unsupportedColorSpace` for CMYK and YCCK. `.tooLarge` when width * height exceeds
    ///   `maxPixelCount`.
    public static func decode(
        _ bytes: [UInt8], path: String, maxPixelCount: Int = defaultMaxPixelCount,
        applyOrientation: Bool = true
    ) throws(JPEGError) -> RGBImage {
        guard bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF else {
            throw .notJPEG(path: path, leadingBytes: Array(bytes.prefix(4)))
        }
        guard let handle = tjInitDecompress() else {
            throw .corrupt(path: path, message: "tjInitDecompress failed: \(lastError(nil))")
        }
        defer { tjDestroy(handle) }

        var width: Int32 = 0
        var height: Int32 = 0
        var subsampling: Int32 = 0
        var colorSpace: Int32 = 0
        let headerStatus = bytes.withUnsafeBufferPointer { input in
            tjDecompressHeader3(
                handle, input.baseAddress, UInt(input.count), &width, &height, &subsampling,
                &colorSpace)
        }
        guard headerStatus == 0 else {
            throw failure(path: path, message: lastError(handle))
        }
        if colorSpace == Int32(TJCS_CMYK.rawValue) || colorSpace == Int32(TJCS_YCCK.rawValue) {
            throw .unsupportedColorSpace(
                path: path, colorSpace: colorSpace == Int32(TJCS_CMYK.rawValue) ? "CMYK" : "YCCK")
        }
        let (pixelCount, overflow) = Int(width).multipliedReportingOverflow(by: Int(height))
        guard !overflow, pixelCount <= maxPixelCount else {
            throw .tooLarge(
                path: path, width: Int(width), height: Int(height), maxPixelCount: maxPixelCount)
        }

        var status: Int32 = 0
        var message = ""
        let pixels = [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { buffer, count in
            status = bytes.withUnsafeBufferPointer { input in
                tjDecompress2(
                    handle, input.baseAddress, UInt(input.count), buffer.baseAddress, width, 0,
                    height, Int32(TJPF_RGB.rawValue), TJFLAG_STOPONWARNING)
            }
            if status != 0 {
                message = lastError(handle)
            }
            // TurboJPEG writes every byte on success. On failure the contents are discarded.
            count = status == 0 ? pixelCount * 3 : 0
        }
        guard status == 0 else {
            throw failure(path: path, message: message)
        }
        let image = try! RGBImage(width: Int(width), height: Int(height), pixels: pixels)
        guard applyOrientation, let orientation = EXIFOrientation(jpeg: bytes) else {
            return image
        }
        return orientation.apply(to: image)
    }

    /// The pixel layouts `encode` accepts.
    enum EncoderInput {
        case rgb
        case gray
        case cmyk
    }

    /// Encodes interleaved samples (`width * height` pixels of 3, 1 or 4 bytes) as a baseline
    /// JPEG with 4:4:4 chroma (4:2:0 when `subsampled`) at `quality` 1...100. The tests use it to
    /// make JPEGs of every colour space, so it is internal.
    static func encode(
        _ samples: [UInt8], width: Int, height: Int, input: EncoderInput, quality: Int,
        subsampled: Bool = false
    ) -> [UInt8]? {
        guard let handle = tjInitCompress() else {
            return nil
        }
        defer { tjDestroy(handle) }
        let (format, sampling): (TJPF, TJSAMP) =
            switch input {
            case .rgb: (TJPF_RGB, subsampled ? TJSAMP_420 : TJSAMP_444)
            case .gray: (TJPF_GRAY, TJSAMP_GRAY)
            case .cmyk: (TJPF_CMYK, TJSAMP_444)
            }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = samples.withUnsafeBufferPointer { pixels in
            tjCompress2(
                handle, pixels.baseAddress, Int32(width), 0, Int32(height), Int32(format.rawValue),
                &output, &size, Int32(sampling.rawValue), Int32(quality), TJFLAG_ACCURATEDCT)
        }
        defer { tjFree(output) }
        guard status == 0, let output else {
            return nil
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }

    private static func lastError(_ handle: tjhandle?) -> String {
        guard let text = tjGetErrorStr2(handle) else {
            return "unknown error"
        }
        return String(cString: text)
    }

    private static func failure(path: String, message: String) -> JPEGError {
        // libjpeg's JWRN_JPEG_EOF and JERR_INPUT_EOF messages.
        if message.contains("Premature end") || message.contains("Empty input") {
            return .truncated(path: path, message: message)
        }
        return .corrupt(path: path, message: message)
    }
}

/// Errors from reading JPEG files. Each names the file.
public enum JPEGError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The bytes do not start with the JPEG SOI marker FF D8 FF.
    case notJPEG(path: String, leadingBytes: [UInt8])
    /// libjpeg reported invalid data.
    case corrupt(path: String, message: String)
    /// The compressed data ends before the image is complete.
    case truncated(path: String, message: String)
    /// The image is CMYK or YCCK, which this reader does not convert.
    case unsupportedColorSpace(path: String, colorSpace: String)
    /// The header declares more pixels than the limit.
    case tooLarge(path: String, width: Int, height: Int, maxPixelCount: Int)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            "JPEG file '\(path)' not found"
        case let .unreadable(path, reason):
            "cannot read JPEG file '\(path)': \(reason)"
        case let .notJPEG(path, leadingBytes):
            "'\(path)' is not a JPEG file: expected leading bytes ff d8 ff, found "
                + leadingBytes.map { String(format: "%02x", $0) }.joined(separator: " ")
        case let .corrupt(path, message):
            "JPEG file '\(path)' is corrupt: \(message)"
        case let .truncated(path, message):
            "JPEG file '\(path)' is truncated (\(message)); the data ends before the last row"
        case let .unsupportedColorSpace(path, colorSpace):
            "JPEG file '\(path)' is \(colorSpace), expected YCbCr, RGB or grayscale; convert it "
                + "to RGB first"
        case let .tooLarge(path, width, height, maxPixelCount):
            "JPEG file '\(path)' is \(width)x\(height) pixels, above the limit of "
                + "\(maxPixelCount) pixels"
        }
    }
}
