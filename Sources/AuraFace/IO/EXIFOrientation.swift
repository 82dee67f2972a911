/// The EXIF orientation tag (0x0112): how the stored pixels must be turned or flipped to show
/// the image upright. Raw values 1 to 8 as in the EXIF 2.3 specification, table of tag 0x0112.
enum EXIFOrientation: Int, Sendable, CaseIterable {
    case up = 1
    case mirrored = 2
    case down = 3
    case mirroredDown = 4
    /// Flipped about the main diagonal (transpose).
    case transposed = 5
    /// Needs a 90-degree clockwise turn.
    case rotatedClockwise = 6
    /// Flipped about the anti-diagonal (transverse).
    case transversed = 7
    /// Needs a 90-degree counterclockwise turn.
    case rotatedCounterclockwise = 8

    /// Reads the orientation from a JPEG's first APP1 Exif segment. Returns nil when there is
    /// no Exif segment, no orientation tag, or a malformed one.
    init?(jpeg bytes: [UInt8]) {
        guard let tiff = Self.exifPayload(bytes), let value = Self.orientationTag(tiff) else {
            return nil
        }
        self.init(rawValue: value)
    }

    /// Returns the upright image.
    func apply(to image: RGBImage) -> RGBImage {
        let w = image.width
        let h = image.height
        let swapsSides = rawValue >= 5
        let outWidth = swapsSides ? h : w
        let outHeight = swapsSides ? w : h
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                // The stored pixel (sx, sy) that appears at (x, y) when shown upright.
                let (sx, sy): (Int, Int) =
                    switch self {
                    case .up: (x, y)
                    case .mirrored: (w - 1 - x, y)
                    case .down: (w - 1 - x, h - 1 - y)
                    case .mirroredDown: (x, h - 1 - y)
                    case .transposed: (y, x)
                    case .rotatedClockwise: (y, h - 1 - x)
                    case .transversed: (w - 1 - y, h - 1 - x)
                    case .rotatedCounterclockwise: (w - 1 - y, x)
                    }
                let source = (sy * w + sx) * 3
                let target = (y * outWidth + x) * 3
                pixels[target] = image.pixels[source]
                pixels[target + 1] = image.pixels[source + 1]
                pixels[target + 2] = image.pixels[source + 2]
            }
        }
        return try! RGBImage(width: outWidth, height: outHeight, pixels: pixels)
    }

    /// Returns the TIFF structure inside the first APP1 segment that starts with "Exif\0\0",
    /// scanning marker segments up to the start of scan.
    private static func exifPayload(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        var offset = 2
        while offset + 4 <= bytes.count, bytes[offset] == 0xFF {
            let marker = bytes[offset + 1]
            if marker == 0xFF {
                offset += 1  // Fill byte.
                continue
            }
            if marker == 0xDA || marker == 0xD9 {
                return nil  // Start of scan or end of image: no metadata follows.
            }
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let start = offset + 4
            let end = offset + 2 + length
            guard length >= 2, end <= bytes.count else {
                return nil
            }
            if marker == 0xE1, end - start >= 6,
                Array(bytes[start..<(start + 6)]) == [0x45, 0x78, 0x69, 0x66, 0, 0]
            {
                return bytes[(start + 6)..<end]
            }
            offset = end
        }
        return nil
    }

    /// Finds tag 0x0112 (type SHORT, count 1) in IFD0 of a TIFF structure.
    private static func orientationTag(_ tiff: ArraySlice<UInt8>) -> Int? {
        let base = tiff.startIndex
        guard tiff.count >= 8 else {
            return nil
        }
        let littleEndian: Bool
        switch (tiff[base], tiff[base + 1]) {
        case (0x49, 0x49): littleEndian = true
        case (0x4D, 0x4D): littleEndian = false
        default: return nil
        }
        func read16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            let a = Int(tiff[base + at]), b = Int(tiff[base + at + 1])
            return littleEndian ? a | b << 8 : a << 8 | b
        }
        func read32(_ at: Int) -> Int? {
            guard let low = read16(littleEndian ? at : at + 2),
                let high = read16(littleEndian ? at + 2 : at)
            else { return nil }
            return high << 16 | low
        }
        guard read16(2) == 42, let ifd = read32(4), let count = read16(ifd) else {
            return nil
        }
        for index in 0..<count {
            let entry = ifd + 2 + index * 12
            guard let tag = read16(entry) else {
                return nil
            }
            if tag == 0x0112 {
                guard read16(entry + 2) == 3, let value = read16(entry + 8) else {
                    return nil
                }
                return value
            }
        }
        return nil
    }
}
