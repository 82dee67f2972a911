import Foundation
import Testing

@testable import AuraFace

/// One decode case: a color type, bit depth and layout that `TestPNG` encodes.
struct PNGDecodeCase: CustomStringConvertible, Sendable {
    var colorType: Int
    var bitDepth: Int
    var interlaced: Bool
    var width = 13
    var height = 11
    var withTransparency = false

    var description: String {
        let names = [0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"]
        return "\(names[colorType]!) \(bitDepth)-bit \(width)x\(height)"
            + (interlaced ? " interlaced" : "") + (withTransparency ? " tRNS" : "")
    }

    /// Builds the image from a fixed seed, so each case encodes the same samples every run.
    func makePNG() -> TestPNG {
        var generator = SampleGenerator(seed: UInt64(colorType * 1000 + bitDepth * 10 + (interlaced ? 1 : 0)))
        var png = TestPNG(width: width, height: height, bitDepth: bitDepth, colorType: colorType, samples: [])
        png.interlaced = interlaced
        let sampleBound = colorType == 3 ? min(1 << bitDepth, 256) : 1 << bitDepth
        if colorType == 3 {
            png.palette = (0..<sampleBound).map { _ in
                (0..<3).map { _ in UInt8(generator.next(below: 256)) }
            }
        }
        png.samples = (0..<(width * height * png.channels)).map { _ in generator.next(below: sampleBound) }
        if withTransparency {
            switch colorType {
            case 0: png.transparency = [0, UInt8(png.samples[0])]
            case 2: png.transparency = [0, UInt8(png.samples[0]), 0, UInt8(png.samples[1]), 0, UInt8(png.samples[2])]
            default: png.transparency = (0..<sampleBound).map { UInt8($0 % 256) }
            }
        }
        return png
    }
}

/// Computes the 8-bit RGB samples a PNG decodes to when alpha is dropped and no gamma is
/// applied.
func expectedRGB(of png: TestPNG) -> [UInt8] {
    func to8Bit(_ value: Int) -> UInt8 {
        switch png.bitDepth {
        // round(v * 255 / 65535) = round(v / 257); v / 257 is never exactly halfway.
        case 16: UInt8((value * 2 + 257) / 514)
        // Bit replication, the exact value of v * 255 / (2^d - 1) for d = 1, 2, 4.
        default: UInt8(value * 255 / ((1 << png.bitDepth) - 1))
        }
    }
    var rgb: [UInt8] = []
    for pixel in 0..<(png.width * png.height) {
        let first = pixel * png.channels
        switch png.colorType {
        case 0, 4:
            let gray = to8Bit(png.samples[first])
            rgb += [gray, gray, gray]
        case 3:
            rgb += png.palette[png.samples[first]]
        default:
            rgb += (0..<3).map { to8Bit(png.samples[first + $0]) }
        }
    }
    return rgb
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "auraface-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("PNG")
struct PNGTests {
    static let decodeCases: [PNGDecodeCase] =
        [false, true].flatMap { interlaced in
            [1, 2, 4, 8, 16].map { PNGDecodeCase(colorType: 0, bitDepth: $0, interlaced: interlaced) }
                + [8, 16].map { PNGDecodeCase(colorType: 2, bitDepth: $0, interlaced: interlaced) }
                + [1, 2, 4, 8].map { PNGDecodeCase(colorType: 3, bitDepth: $0, interlaced: interlaced) }
                + [8, 16].map { PNGDecodeCase(colorType: 4, bitDepth: $0, interlaced: interlaced) }
                + [8, 16].map { PNGDecodeCase(colorType: 6, bitDepth: $0, interlaced: interlaced) }
        } + [
            PNGDecodeCase(colorType: 0, bitDepth: 8, interlaced: false, withTransparency: true),
            PNGDecodeCase(colorType: 2, bitDepth: 8, interlaced: false, withTransparency: true),
            PNGDecodeCase(colorType: 3, bitDepth: 8, interlaced: false, withTransparency: true),
            PNGDecodeCase(colorType: 3, bitDepth: 4, interlaced: true, withTransparency: true),
            // Images smaller than the 8x8 Adam7 tile leave some passes empty.
            PNGDecodeCase(colorType: 6, bitDepth: 8, interlaced: true, width: 1, height: 1),
            PNGDecodeCase(colorType: 2, bitDepth: 16, interlaced: true, width: 3, height: 2),
            PNGDecodeCase(colorType: 0, bitDepth: 1, interlaced: true, width: 9, height: 1),
            PNGDecodeCase(colorType: 0, bitDepth: 2, interlaced: false, width: 1, height: 9),
        ]

    @Test("decodes to stored RGB values", arguments: decodeCases)
    func decodeMatchesSamples(_ testCase: PNGDecodeCase) throws {
        let png = testCase.makePNG()
        let image = try PNGImage.decode(png.encoded(), path: "case.png")

        #expect(image.width == png.width)
        #expect(image.height == png.height)
        let expected = expectedRGB(of: png)
        let mismatches = zip(image.pixels, expected).filter { $0 != $1 }.count
        #expect(image.pixels.count == expected.count)
        #expect(mismatches == 0, "\(mismatches) of \(expected.count) samples differ")
    }

    @Test func headerReportsIHDRFields() throws {
        let png = PNGDecodeCase(colorType: 4, bitDepth: 16, interlaced: true).makePNG()
        let header = try PNGImage.header(of: png.encoded(), path: "header.png")

        #expect(header == PNGImage.Header(width: 13, height: 11, bitDepth: 16, colorType: .grayAlpha, interlaced: true))
    }

    @Test func alphaIsDroppedNotComposited() throws {
        // A fully transparent RGBA pixel keeps the color stored under it.
        let png = TestPNG(width: 2, height: 1, bitDepth: 8, colorType: 6, samples: [200, 100, 50, 0, 10, 20, 30, 255])
        let image = try PNGImage.decode(png.encoded(), path: "alpha.png")

        #expect(image.pixels == [200, 100, 50, 10, 20, 30])
    }

    @Test func gammaChunksDoNotChangeSamples() throws {
        // gAMA 1.0 and a cHRM-free sRGB chunk: a gamma-correcting decoder would remap mid-gray.
        var png = TestPNG(width: 3, height: 1, bitDepth: 16, colorType: 0, samples: [0, 32_768, 65_535])
        png.extraChunks = [("gAMA", TestPNG.bigEndian32(100_000)), ("sRGB", [0])]
        let image = try PNGImage.decode(png.encoded(), path: "gamma.png")

        #expect(image.pixels == [0, 0, 0, 128, 128, 128, 255, 255, 255])
    }

    @Test func encodeDecodeRoundTrip() throws {
        var generator = SampleGenerator(seed: 7)
        let pixels = (0..<(37 * 23 * 3)).map { _ in UInt8(generator.next(below: 256)) }
        let image = try RGBImage(width: 37, height: 23, pixels: pixels)

        let encoded = try PNGImage.encode(image)
        let header = try PNGImage.header(of: encoded, path: "round-trip.png")
        let decoded = try PNGImage.decode(encoded, path: "round-trip.png")

        #expect(header.colorType == .rgb)
        #expect(header.bitDepth == 8)
        #expect(decoded == image)
    }

    @Test func writeAndReadFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("face.png")
        let image = try RGBImage(width: 2, height: 2, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])

        try PNGImage.write(image, to: url)
        let read = try PNGImage.read(contentsOf: url)

        #expect(read == image)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["face.png"])
    }

    @Test func truncatedFileThrowsAtEveryLength() throws {
        let png = PNGDecodeCase(colorType: 2, bitDepth: 8, interlaced: true, width: 5, height: 4).makePNG()
        let compressed = try PNGImage.encode(
            RGBImage(width: 5, height: 4, pixels: expectedRGB(of: png)))
        for bytes in [png.encoded(), compressed] {
            for length in 1..<bytes.count {
                let error = #expect(throws: PNGError.self, "prefix of \(length) bytes") {
                    _ = try PNGImage.decode(Array(bytes.prefix(length)), path: "cut.png")
                }
                guard case .truncated = error else {
                    Issue.record(
                        "prefix of \(length) of \(bytes.count) bytes: expected truncated, got \(String(describing: error))")
                    continue
                }
            }
        }
    }

    @Test func truncatedErrorNamesFile() throws {
        let bytes = TestPNG(width: 1, height: 1, bitDepth: 8, colorType: 0, samples: [9]).encoded()
        let error = #expect(throws: PNGError.self) {
            _ = try PNGImage.decode(Array(bytes.dropLast(3)), path: "faces/a.png")
        }

        #expect(error?.description.contains("'faces/a.png' is a truncated PNG file") == true)
    }

    @Test func chunkLengthPastEndIsTruncated() throws {
        // Found by fuzz-png: a 7x9 palette IHDR, then an sPLT header declaring 536870961 data
        // bytes with 4 present. libpng allocated the declared 512 MB before reading, so the
        // shim must reject the length before libpng reads the chunk.
        let bytes = decodeHex(
            "89504e470d0a1a0a0000000d49484452000000070000000908030000"
                + "00c986c6912000003173504c54504c5445")
        #expect(bytes.count == 45)
        let error = #expect(throws: PNGError.self) {
            _ = try PNGImage.decode(bytes, path: "splt.png")
        }
        guard case let .truncated(path, reason) = error else {
            Issue.record("expected truncated, got \(String(describing: error))")
            return
        }
        #expect(path == "splt.png")
        #expect(reason.contains("the chunk at byte 33 needs 536870973 bytes"))
        #expect(reason.contains("536870961 of data"))
        #expect(reason.contains("but only 12 remain"))
    }

    @Test func emptyAndForeignDataAreNotPNG() throws {
        let inputs: [[UInt8]] = [
            [],
            Array("hello, world".utf8),
            [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46],  // A JPEG start.
            [137, 80, 78, 71, 13, 10, 26, 11, 0, 0, 0, 13],  // The signature with its last byte changed.
        ]
        for bytes in inputs {
            let error = #expect(throws: PNGError.self) {
                _ = try PNGImage.decode(bytes, path: "x.png")
            }
            guard case .notPNG(let path, _) = error else {
                Issue.record("\(bytes.prefix(4)): expected notPNG, got \(String(describing: error))")
                continue
            }
            #expect(path == "x.png")
        }
    }

    @Test func signaturePrefixIsTruncated() throws {
        let error = #expect(throws: PNGError.self) {
            _ = try PNGImage.decode([137, 80, 78], path: "short.png")
        }
        guard case .truncated = error else {
            Issue.record("expected truncated, got \(String(describing: error))")
            return
        }
    }

    @Test func damagedDataIsCorrupt() throws {
        let png = PNGDecodeCase(colorType: 2, bitDepth: 8, interlaced: false).makePNG()
        let bytes = png.encoded()

        // A flipped byte inside IDAT's data breaks that chunk's CRC.
        var badCRC = bytes
        let idat = try #require(findChunk("IDAT", in: bytes))
        badCRC[idat + 20] ^= 0x55
        // A valid CRC over an invalid IHDR: bit depth 3 does not exist.
        var badHeader = bytes
        badHeader[24] = 3
        let crc = TestPNG.crc32(Array(badHeader[12..<29]))
        badHeader.replaceSubrange(29..<33, with: TestPNG.bigEndian32(Int(crc)))
        // A valid chunk whose zlib stream is garbage.
        let badZlib = TestPNG.signature + Array(bytes[8..<33]) + TestPNG.chunk("IDAT", [0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xFF])
            + TestPNG.chunk("IEND", [])

        for (name, damaged) in [("bad CRC", badCRC), ("bad IHDR", badHeader), ("bad zlib", badZlib)] {
            let error = #expect(throws: PNGError.self, "\(name)") {
                _ = try PNGImage.decode(damaged, path: "damaged.png")
            }
            guard case .corrupt(let path, let reason) = error else {
                Issue.record("\(name): expected corrupt, got \(String(describing: error))")
                continue
            }
            #expect(path == "damaged.png")
            #expect(!reason.isEmpty, "\(name): libpng's message is missing")
        }
    }

    @Test func overLimitDimensionsAreRejectedBeforeDecoding() throws {
        // IHDR declares 20000x20000 (400 megapixels); there is no image data at all, so only a
        // check made before decoding can produce tooLarge.
        let ihdr = TestPNG.bigEndian32(20_000) + TestPNG.bigEndian32(20_000) + [8, 2, 0, 0, 0]
        let bytes = TestPNG.signature + TestPNG.chunk("IHDR", ihdr) + TestPNG.chunk("IEND", [])

        let error = #expect(throws: PNGError.self) {
            _ = try PNGImage.decode(bytes, path: "huge.png")
        }
        #expect(error == .tooLarge(path: "huge.png", width: 20_000, height: 20_000, maxPixelCount: 100_000_000))
    }

    @Test func customPixelLimitApplies() throws {
        let bytes = PNGDecodeCase(colorType: 0, bitDepth: 8, interlaced: false).makePNG().encoded()

        #expect(throws: PNGError.tooLarge(path: "small.png", width: 13, height: 11, maxPixelCount: 142)) {
            _ = try PNGImage.decode(bytes, path: "small.png", maxPixelCount: 142)
        }
        #expect(try PNGImage.decode(bytes, path: "small.png", maxPixelCount: 143).width == 13)
    }

    @Test func missingFileAndDirectoryAreReported() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.png")

        #expect(throws: PNGError.fileNotFound(path: missing.path)) {
            _ = try PNGImage.read(contentsOf: missing)
        }
        #expect(throws: PNGError.unreadable(path: directory.path, reason: "expected a regular file, found a directory")) {
            _ = try PNGImage.read(contentsOf: directory)
        }
    }

    private func findChunk(_ type: String, in bytes: [UInt8]) -> Int? {
        let typeBytes = Array(type.utf8)
        var offset = 8
        while offset + 8 <= bytes.count {
            let length = bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            if Array(bytes[(offset + 4)..<(offset + 8)]) == typeBytes {
                return offset
            }
            offset += 12 + length
        }
        return nil
    }
}

@Suite("RGBImage")
struct RGBImageTests {
    static func metadata(inputSize: Int, channelOrder: String = "RGB") -> WeightFileMetadata {
        var metadata = WeightFileMetadata(
            architecture: IResNetArchitecture(stageDepths: [1, 1, 1, 1], inputSize: inputSize))
        metadata.channelOrder = channelOrder
        metadata.inputMean = 127.5
        metadata.inputScale = 1 / 127.5
        return metadata
    }

    static func image(size: Int, seed: UInt64) throws -> RGBImage {
        var generator = SampleGenerator(seed: seed)
        return try RGBImage(
            width: size, height: size,
            pixels: (0..<(size * size * 3)).map { _ in UInt8(generator.next(below: 256)) })
    }

    @Test func pixelCountMustMatchSize() {
        #expect(throws: ImageInputError.pixelCountMismatch(width: 2, height: 2, found: 11)) {
            _ = try RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 0, count: 11))
        }
        #expect(throws: ImageInputError.self) {
            _ = try RGBImage(width: 0, height: 5, pixels: [])
        }
    }

    @Test func normalizedBatchIsPlanarNCHW() throws {
        let size = 16
        let images = try [Self.image(size: size, seed: 1), Self.image(size: size, seed: 2)]
        let tensor = try RGBImage.normalizedBatch(images, metadata: Self.metadata(inputSize: size))

        #expect(tensor.count == 2 * 3 * size * size)
        for (n, image) in images.enumerated() {
            for c in 0..<3 {
                for (y, x) in [(0, 0), (5, 11), (15, 15)] {
                    let value = tensor[((n * 3 + c) * size + y) * size + x]
                    let sample = Float(image.pixels[(y * size + x) * 3 + c])
                    #expect(abs(value - (sample - 127.5) / 127.5) < 1e-6, "n \(n) c \(c) y \(y) x \(x)")
                }
            }
        }
        #expect(tensor.allSatisfy { $0 >= -1 })
        #expect(tensor.allSatisfy { $0 <= 1 })
    }

    @Test func bgrOrderPutsBlueFirst() throws {
        let image = try RGBImage(width: 16, height: 16, pixels: [UInt8](repeating: 0, count: 768).enumerated().map {
            [255, 127, 0][$0.offset % 3]
        })
        let rgb = try RGBImage.normalizedBatch([image], metadata: Self.metadata(inputSize: 16))
        let bgr = try RGBImage.normalizedBatch([image], metadata: Self.metadata(inputSize: 16, channelOrder: "BGR"))

        #expect(rgb[0] == 1)
        #expect(rgb[2 * 256] == -1)
        #expect(bgr[0] == -1)
        #expect(bgr[2 * 256] == 1)
        #expect(bgr[256] == rgb[256])
    }

    @Test func wrongSizeNamesExpectedSize() throws {
        let image = try Self.image(size: 16, seed: 3)
        let error = #expect(throws: ImageInputError.self) {
            _ = try RGBImage.normalizedBatch([image], metadata: Self.metadata(inputSize: 112))
        }

        #expect(error == .sizeMismatch(expected: 112, width: 16, height: 16))
        #expect(error?.description.contains("aligned 112x112 face crops") == true)
    }
}
