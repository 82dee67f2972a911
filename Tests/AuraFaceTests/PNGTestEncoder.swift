// A PNG encoder for tests, written from the PNG specification (W3C PNG, 2nd edition) and
// independent of libpng, so decoding its output with libpng compares two implementations.
// It stores the image data in uncompressed deflate blocks (RFC 1951 block type 0) inside a zlib
// stream (RFC 1950), with filter type 0 on every scanline, and supports every color type, every
// bit depth and Adam7 interlacing.

/// One image to encode: `samples` contains `channels` values per pixel, row-major, each in
/// `0..<(1 << bitDepth)`. For `colorType` 3 the single channel is a palette index.
struct TestPNG {
    var width: Int
    var height: Int
    var bitDepth: Int
    /// 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    var colorType: Int
    var interlaced = false
    var samples: [Int]
    var palette: [[UInt8]] = []
    /// The tRNS chunk's payload, written as given.
    var transparency: [UInt8]? = nil
    /// Ancillary chunks written before IDAT, as (type, data).
    var extraChunks: [(String, [UInt8])] = []

    var channels: Int {
        switch colorType {
        case 0, 3: 1
        case 2: 3
        case 4: 2
        default: 4
        }
    }

    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]

    func encoded() -> [UInt8] {
        var ihdr = Self.bigEndian32(width) + Self.bigEndian32(height)
        ihdr += [UInt8(bitDepth), UInt8(colorType), 0, 0, interlaced ? 1 : 0]
        var file = Self.signature + Self.chunk("IHDR", ihdr)
        for (type, data) in extraChunks {
            file += Self.chunk(type, data)
        }
        if !palette.isEmpty {
            file += Self.chunk("PLTE", palette.flatMap { $0 })
        }
        if let transparency {
            file += Self.chunk("tRNS", transparency)
        }
        file += Self.chunk("IDAT", Self.zlibStored(scanlines()))
        file += Self.chunk("IEND", [])
        return file
    }

    /// Builds the filtered image data: every pass's scanlines, each with a leading filter byte 0.
    func scanlines() -> [UInt8] {
        // Adam7 passes as (x start, y start, x step, y step).
        let passes =
            interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)]
        var data: [UInt8] = []
        for (x0, y0, dx, dy) in passes {
            let xs = Array(stride(from: x0, to: width, by: dx))
            let ys = Array(stride(from: y0, to: height, by: dy))
            // A pass with no pixels contributes no scanlines, not even filter bytes.
            if xs.isEmpty || ys.isEmpty { continue }
            for y in ys {
                data.append(0)
                data += packRow(xs.flatMap { x in (0..<channels).map { samples[(y * width + x) * channels + $0] } })
            }
        }
        return data
    }

    private func packRow(_ values: [Int]) -> [UInt8] {
        switch bitDepth {
        case 16:
            return values.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        case 8:
            return values.map { UInt8($0) }
        default:
            // Samples narrower than a byte are packed from the most significant bit down, and
            // the last byte of a row is padded with zero bits.
            var bytes: [UInt8] = []
            var current = 0
            var filled = 0
            for value in values {
                current = (current << bitDepth) | value
                filled += bitDepth
                if filled == 8 {
                    bytes.append(UInt8(current))
                    current = 0
                    filled = 0
                }
            }
            if filled > 0 {
                bytes.append(UInt8(current << (8 - filled)))
            }
            return bytes
        }
    }

    static func bigEndian32(_ value: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return bigEndian32(data.count) + typeBytes + data + bigEndian32(Int(crc32(typeBytes + data)))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
            }
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// Wraps `data` in a zlib stream of stored deflate blocks of at most 65,535 bytes each.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var output: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let isLast = offset + length == data.count
            output.append(isLast ? 1 : 0)
            output += [UInt8(length & 0xFF), UInt8(length >> 8)]
            output += [UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            output += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return output + bigEndian32(Int((b << 16) | a))
    }
}

/// A deterministic sample source (a 64-bit linear congruential generator, Knuth's MMIX
/// constants), so every run encodes the same images.
struct SampleGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next(below bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }
}
