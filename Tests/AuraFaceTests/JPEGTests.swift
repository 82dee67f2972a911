// JPEG decoding: colour spaces, EXIF orientation, limits and damaged files. The JPEGs are
// encoded in the test with TurboJPEG's encoder, from seeded pixel data.

import Foundation
import Testing

@testable import AuraFace

@Suite struct JPEGTests {
    /// Returns a smooth gradient, which JPEG at quality 100 reproduces within a few grey levels.
    static func gradient(width: Int, height: Int) -> [UInt8] {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                pixels += [UInt8(x * 255 / max(width - 1, 1)), UInt8(y * 255 / max(height - 1, 1)), 128]
            }
        }
        return pixels
    }

    static func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).map { Swift.abs(Int($0) - Int($1)) }.max() ?? 0
    }

    /// Inserts an APP1 Exif segment holding only the orientation tag, right after SOI.
    static func withOrientation(_ jpeg: [UInt8], _ orientation: Int, bigEndian: Bool) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] {
            bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)]
        }
        func u32(_ v: Int) -> [UInt8] {
            bigEndian ? [0, 0] + u16(v) : u16(v) + [0, 0]
        }
        var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        tiff += u16(42) + u32(8) + u16(1)
        tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + [0, 0]
        tiff += u32(0)
        let payload: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0] + tiff
        let length = payload.count + 2
        let segment: [UInt8] = [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
        return Array(jpeg[0..<2]) + segment + Array(jpeg[2...])
    }

    @Test func rgbRoundTripsAtQuality100() throws {
        let pixels = Self.gradient(width: 48, height: 32)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 48, height: 32, input: .rgb, quality: 100))
        let image = try JPEGImage.decode(jpeg, path: "gradient.jpg")
        #expect(image.width == 48)
        #expect(image.height == 32)
        #expect(Self.maxDifference(image.pixels, pixels) <= 3)
    }

    @Test func grayDecodesToEqualChannels() throws {
        let gray = (0..<(20 * 10)).map { UInt8($0 % 20 * 12) }
        let jpeg = try #require(JPEGImage.encode(gray, width: 20, height: 10, input: .gray, quality: 100))
        let image = try JPEGImage.decode(jpeg, path: "gray.jpg")
        #expect(image.width == 20)
        for index in 0..<(20 * 10) {
            #expect(image.pixels[3 * index] == image.pixels[3 * index + 1])
            #expect(image.pixels[3 * index] == image.pixels[3 * index + 2])
        }
        let expanded = gray.flatMap { [$0, $0, $0] }
        #expect(Self.maxDifference(image.pixels, expanded) <= 3)
    }

    @Test func cmykIsRejected() throws {
        let cmyk = [UInt8](repeating: 40, count: 16 * 16 * 4)
        let jpeg = try #require(JPEGImage.encode(cmyk, width: 16, height: 16, input: .cmyk, quality: 90))
        let error = #expect(throws: JPEGError.self) { try JPEGImage.decode(jpeg, path: "print.jpg") }
        #expect(error == .unsupportedColorSpace(path: "print.jpg", colorSpace: "YCCK"))
        #expect(error?.description.contains("print.jpg") == true)
    }

    @Test func everyOrientationIsApplied() throws {
        // A 3x2 image with distinct pixels, turned by each orientation in memory.
        let stored = try RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 10) })
        func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> UInt8 {
            image.pixels[(y * image.width + x) * 3]
        }
        // Stored first channels: row 0 = 0, 30, 60; row 1 = 90, 120, 150.
        let expectedRows: [EXIFOrientation: [[UInt8]]] = [
            .up: [[0, 30, 60], [90, 120, 150]],
            .mirrored: [[60, 30, 0], [150, 120, 90]],
            .down: [[150, 120, 90], [60, 30, 0]],
            .mirroredDown: [[90, 120, 150], [0, 30, 60]],
            .transposed: [[0, 90], [30, 120], [60, 150]],
            .rotatedClockwise: [[90, 0], [120, 30], [150, 60]],
            .transversed: [[150, 60], [120, 30], [90, 0]],
            .rotatedCounterclockwise: [[60, 150], [30, 120], [0, 90]],
        ]
        for orientation in EXIFOrientation.allCases {
            let upright = orientation.apply(to: stored)
            let rows = try #require(expectedRows[orientation])
            #expect(upright.height == rows.count, "\(orientation)")
            #expect(upright.width == rows[0].count, "\(orientation)")
            let actual = (0..<upright.height).map { y in (0..<upright.width).map { pixel(upright, $0, y) } }
            #expect(actual == rows, "\(orientation)")
        }
    }

    @Test func exifOrientationTurnsDecodedImage() throws {
        let pixels = Self.gradient(width: 40, height: 24)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 40, height: 24, input: .rgb, quality: 100))
        for bigEndian in [false, true] {
            let tagged = Self.withOrientation(jpeg, 6, bigEndian: bigEndian)
            #expect(EXIFOrientation(jpeg: tagged) == .rotatedClockwise)
            let image = try JPEGImage.decode(tagged, path: "portrait.jpg")
            #expect(image.width == 24)
            #expect(image.height == 40)
            let unturned = try JPEGImage.decode(tagged, path: "portrait.jpg", applyOrientation: false)
            #expect(image == EXIFOrientation.rotatedClockwise.apply(to: unturned))
        }
        #expect(EXIFOrientation(jpeg: jpeg) == nil)
        #expect(EXIFOrientation(jpeg: Self.withOrientation(jpeg, 9, bigEndian: false)) == nil)
    }

    @Test func truncatedFileIsAnError() throws {
        let pixels = Self.gradient(width: 64, height: 64)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 64, height: 64, input: .rgb, quality: 95))
        let cut = Array(jpeg.prefix(jpeg.count * 2 / 3))
        let error = #expect(throws: JPEGError.self) { try JPEGImage.decode(cut, path: "cut.jpg") }
        guard case let .truncated(path, _) = error else {
            Issue.record("expected .truncated, got \(String(describing: error))")
            return
        }
        #expect(path == "cut.jpg")
        #expect(error?.description.contains("cut.jpg") == true)
    }

    @Test func corruptAndForeignBytesAreErrors() throws {
        let pixels = Self.gradient(width: 32, height: 32)
        var jpeg = try #require(JPEGImage.encode(pixels, width: 32, height: 32, input: .rgb, quality: 90))
        #expect(throws: JPEGError.notJPEG(path: "a.png", leadingBytes: [0x89, 0x50, 0x4E, 0x47])) {
            try JPEGImage.decode([0x89, 0x50, 0x4E, 0x47, 0x0D], path: "a.png")
        }
        // Overwrite everything after SOI with a marker that is not a valid segment.
        for index in 2..<min(jpeg.count, 200) {
            jpeg[index] = 0xFF
        }
        let error = #expect(throws: JPEGError.self) { try JPEGImage.decode(jpeg, path: "bad.jpg") }
        switch error {
        case .corrupt(let path, _), .truncated(let path, _):
            #expect(path == "bad.jpg")
        default:
            Issue.record("expected .corrupt or .truncated, got \(String(describing: error))")
        }
    }

    @Test func pixelLimitIsCheckedFromHeader() throws {
        let pixels = Self.gradient(width: 40, height: 30)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 40, height: 30, input: .rgb, quality: 90))
        #expect(throws: JPEGError.tooLarge(path: "big.jpg", width: 40, height: 30, maxPixelCount: 1199)) {
            try JPEGImage.decode(jpeg, path: "big.jpg", maxPixelCount: 1199)
        }
        #expect(try JPEGImage.decode(jpeg, path: "big.jpg", maxPixelCount: 1200).width == 40)
    }

    @Test func missingFileIsNamed() {
        let url = URL(fileURLWithPath: "/nonexistent/face.jpg")
        #expect(throws: JPEGError.fileNotFound(path: "/nonexistent/face.jpg")) {
            try JPEGImage.read(contentsOf: url)
        }
    }
}
