// InsightFace's face-verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin, calfw.bin,
// cplfw.bin): a pickled tuple (images, issame) where images contains 2P encoded face crops,
// pair i is images[2i] and images[2i + 1], and issame contains P bools.

import Foundation

/// A face-verification set read from an InsightFace `.bin` file. Images stay encoded until
/// `image(at:size:)` decodes one.
public struct VerificationSet: Sendable {
    /// The file the set was read from, for messages.
    public let path: String
    /// The encoded images (JPEG or PNG), two per pair, in file order.
    public let encodedImages: [ArraySlice<UInt8>]
    /// Whether pair i shows the same person.
    public let isSame: [Bool]

    public var pairCount: Int { isSame.count }

    /// Reads the pickle at `url`. Images are not decoded yet.
    ///
    /// - Throws: `VerificationSetError.unreadable`, `PickleError` for a file outside the
    ///   supported pickle subset, `VerificationSetError.invalidLayout` when the pickle is not
    ///   `(list of 2P images, list of P bools)`.
    public init(contentsOf url: URL) throws {
        let bytes: [UInt8]
        do {
            // readFileBytes rejects a FIFO or device at once instead of blocking on it.
            bytes = try readFileBytes(url)
        } catch {
            throw VerificationSetError.unreadable(path: url.path, reason: error.reason)
        }
        try self.init(bytes: bytes, path: url.path)
    }

    /// Reads a verification set from the bytes of a `.bin` file. `path` names it in errors.
    ///
    /// - Throws: as `init(contentsOf:)`.
    public init(bytes: [UInt8], path: String) throws {
        self.path = path
        let value = try PickleReader.decode(bytes, path: path)
        guard case let .tuple(parts) = value, parts.count == 2 else {
            throw VerificationSetError.invalidLayout(
                path: path,
                reason: "the pickle holds \(value.kindDescription), expected a 2-tuple (images, issame)")
        }
        guard case let .list(imageValues) = parts[0] else {
            throw VerificationSetError.invalidLayout(
                path: path,
                reason: "the first item is \(parts[0].kindDescription), expected a list of images")
        }
        guard case let .list(labelValues) = parts[1] else {
            throw VerificationSetError.invalidLayout(
                path: path,
                reason: "the second item is \(parts[1].kindDescription), expected a list of bools")
        }

        var images: [ArraySlice<UInt8>] = []
        images.reserveCapacity(imageValues.count)
        for (index, item) in imageValues.enumerated() {
            switch item {
            case let .bytes(bytes), let .uint8Array(_, bytes):
                images.append(bytes)
            default:
                throw VerificationSetError.invalidLayout(
                    path: path,
                    reason: "image \(index) is \(item.kindDescription), expected bytes or a uint8 array")
            }
        }
        var labels: [Bool] = []
        labels.reserveCapacity(labelValues.count)
        for (index, item) in labelValues.enumerated() {
            guard case let .bool(flag) = item else {
                throw VerificationSetError.invalidLayout(
                    path: path, reason: "issame[\(index)] is \(item.kindDescription), expected a bool")
            }
            labels.append(flag)
        }
        guard !labels.isEmpty, images.count == 2 * labels.count else {
            throw VerificationSetError.invalidLayout(
                path: path,
                reason: "\(images.count) images for \(labels.count) pairs, expected two images per "
                    + "pair and at least one pair")
        }
        encodedImages = images
        isSame = labels
    }

    /// Decodes image `index` (0 ..< 2 * pairCount) to 8-bit RGB, choosing the decoder by its
    /// leading bytes, and checks that it is `size` x `size` pixels.
    ///
    /// - Throws: `VerificationSetError.unsupportedImageFormat`, `.imageSizeMismatch`, or the
    ///   decoder's error.
    public func image(at index: Int, size: Int) throws -> RGBImage {
        let name = "'\(path)' image \(index)"
        let image = try VerificationImageDecoder.decode(Array(encodedImages[index]), name: name)
        guard image.width == size, image.height == size else {
            throw VerificationSetError.imageSizeMismatch(
                path: path, index: index, expected: size, width: image.width, height: image.height)
        }
        return image
    }
}

/// Errors from reading a verification set, each naming the file.
public enum VerificationSetError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// The pickle decoded, but not to (list of 2P images, list of P bools).
    case invalidLayout(path: String, reason: String)
    /// An image starts with bytes that are neither JPEG nor PNG.
    case unsupportedImageFormat(name: String, leadingBytes: [UInt8])
    /// An image is not the model's input size.
    case imageSizeMismatch(path: String, index: Int, expected: Int, width: Int, height: Int)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read '\(path)': \(reason)"
        case let .invalidLayout(path, reason):
            return "'\(path)' is not a face-verification set: \(reason)"
        case let .unsupportedImageFormat(name, leadingBytes):
            let hex = leadingBytes.map { String(format: "%02x", $0) }.joined(separator: " ")
            return "\(name): unsupported image format (leading bytes \(hex)), expected JPEG "
                + "(ff d8 ff) or PNG (89 50 4e 47)"
        case let .imageSizeMismatch(path, index, expected, width, height):
            return "'\(path)' image \(index) is \(width)x\(height) pixels, but the model takes "
                + "\(expected)x\(expected) aligned face crops; use the \(expected)x\(expected) .bin "
                + "files from InsightFace's training-data packages"
        }
    }
}

/// Picks an image decoder from an encoded image's leading bytes.
public enum VerificationImageDecoder {
    /// Decodes JPEG (through `JPEGImage`) or PNG bytes to 8-bit RGB. `name` identifies the
    /// image in errors.
    ///
    /// - Throws: `VerificationSetError.unsupportedImageFormat` for other data, or the
    ///   decoder's error.
    public static func decode(_ bytes: [UInt8], name: String) throws -> RGBImage {
        if bytes.starts(with: [0x89, 0x50, 0x4e, 0x47]) {
            return try PNGImage.decode(bytes, path: name)
        }
        if bytes.starts(with: [0xff, 0xd8, 0xff]) {
            return try JPEGImage.decode(bytes, path: name)
        }
        throw VerificationSetError.unsupportedImageFormat(
            name: name, leadingBytes: Array(bytes.prefix(8)))
    }
}

extension RGBImage {
    /// Returns the image flipped left to right, the test-time augmentation of InsightFace's
    /// verification protocol.
    public func horizontallyMirrored() -> RGBImage {
        var mirrored = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            let row = y * width * 3
            for x in 0..<width {
                let source = row + x * 3
                let target = row + (width - 1 - x) * 3
                mirrored[target] = pixels[source]
                mirrored[target + 1] = pixels[source + 1]
                mirrored[target + 2] = pixels[source + 2]
            }
        }
        // Same dimensions and sample count as `self`, so the initializer's check passes.
        return try! RGBImage(width: width, height: height, pixels: mirrored)
    }
}
