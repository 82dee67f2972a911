import Foundation

/// Reads a photo in any format the library decodes, chosen by the file's leading bytes:
/// PNG, JPEG (with EXIF orientation applied) or binary PPM/PGM.
public enum PhotoFile {
    /// Reads and decodes the image file at `url` into 8-bit RGB.
    ///
    /// - Throws: `PhotoFileError.unsupportedFormat` for other formats, `.unreadable` when the
    ///   file cannot be read, and the decoder's `PNGError`, `JPEGError` or `PPMError`.
    public static func read(contentsOf url: URL) throws -> RGBImage {
        let bytes: [UInt8]
        do {
            // readFileBytes rejects a FIFO or device at once instead of blocking on it.
            bytes = try readFileBytes(url)
        } catch {
            throw PhotoFileError.unreadable(path: url.path, reason: error.reason)
        }
        return try decode(bytes, path: url.path)
    }

    /// Decodes image bytes; `path` names the source in error messages.
    public static func decode(_ bytes: [UInt8], path: String) throws -> RGBImage {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            return try PNGImage.decode(bytes, path: path)
        }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            return try JPEGImage.decode(bytes, path: path)
        }
        if bytes.starts(with: Array("P6".utf8)) || bytes.starts(with: Array("P5".utf8)) {
            return try PPMImage.decode(bytes, path: path)
        }
        throw PhotoFileError.unsupportedFormat(path: path, leadingBytes: Array(bytes.prefix(4)))
    }
}

/// Errors from `PhotoFile` before a decoder is chosen.
public enum PhotoFileError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// The leading bytes match none of PNG, JPEG, PPM (P6) or PGM (P5).
    case unsupportedFormat(path: String, leadingBytes: [UInt8])

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            "cannot read image file '\(path)': \(reason)"
        case let .unsupportedFormat(path, leadingBytes) where leadingBytes.isEmpty:
            "'\(path)' is empty, expected a PNG, JPEG, PPM (P6) or PGM (P5) file"
        case let .unsupportedFormat(path, leadingBytes):
            "'\(path)' is not a PNG, JPEG, PPM (P6) or PGM (P5) file (leading bytes "
                + leadingBytes.map { String(format: "%02x", $0) }.joined(separator: " ") + ")"
        }
    }
}
