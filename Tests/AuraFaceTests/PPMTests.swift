// Binary PPM (P6) and PGM (P5) decoding, 8- and 16-bit, with comments and damaged files.

import Foundation
import Testing

@testable import AuraFace

@Suite struct PPMTests {
    @Test func p6RoundTrips() throws {
        var random = SeededRandom(seed: 5)
        let pixels = (0..<(7 * 3 * 3)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let image = try RGBImage(width: 7, height: 3, pixels: pixels)
        #expect(try PPMImage.decode(PPMImage.encode(image), path: "a.ppm") == image)
    }

    @Test func commentsAndWhitespaceInHeader() throws {
        let header = Array("P6 # made by hand\n2\t1\r\n# maxval next\n255\n".utf8)
        let image = try PPMImage.decode(header + [1, 2, 3, 4, 5, 6], path: "c.ppm")
        #expect(image.width == 2)
        #expect(image.pixels == [1, 2, 3, 4, 5, 6])
    }

    @Test func pgmIsCopiedToThreeChannels() throws {
        let bytes = Array("P5\n3 1\n255\n".utf8) + [0, 128, 255]
        let image = try PPMImage.decode(bytes, path: "g.pgm")
        #expect(image.pixels == [0, 0, 0, 128, 128, 128, 255, 255, 255])
    }

    @Test func sixteenBitSamplesAreScaled() throws {
        // Big-endian 16-bit: 65535 -> 255, 32768 -> 128 (127.5 rounds up), 257 -> 1.
        let samples: [UInt8] = [0xFF, 0xFF, 0x80, 0x00, 0x01, 0x01]
        let ppm = try PPMImage.decode(Array("P6\n1 1\n65535\n".utf8) + samples, path: "w.ppm")
        #expect(ppm.pixels == [255, 128, 1])
        let pgm = try PPMImage.decode(Array("P5\n1 1\n1023\n".utf8) + [0x03, 0xFF], path: "w.pgm")
        #expect(pgm.pixels == [255, 255, 255])
    }

    @Test func smallMaxvalIsScaled() throws {
        let bytes = Array("P5\n3 1\n15\n".utf8) + [0, 7, 15]
        let image = try PPMImage.decode(bytes, path: "m.pgm")
        #expect(image.pixels == [0, 0, 0, 119, 119, 119, 255, 255, 255])
    }

    @Test func damagedFilesAreErrors() {
        #expect(throws: PPMError.notNetpbm(path: "x", magic: "P3")) {
            try PPMImage.decode(Array("P3\n1 1\n255\n0 0 0\n".utf8), path: "x")
        }
        #expect(throws: PPMError.truncated(path: "t.ppm", expected: 12, found: 5)) {
            try PPMImage.decode(Array("P6\n2 2\n255\n".utf8) + [1, 2, 3, 4, 5], path: "t.ppm")
        }
        #expect(throws: PPMError.sampleAboveMaxval(path: "s.pgm", sample: 200, maxval: 100)) {
            try PPMImage.decode(Array("P5\n1 1\n100\n".utf8) + [200], path: "s.pgm")
        }
        #expect(throws: PPMError.self) {
            try PPMImage.decode(Array("P6\n0 1\n255\n".utf8), path: "z.ppm")
        }
        #expect(throws: PPMError.self) {
            try PPMImage.decode(Array("P6\n1 1\n70000\n".utf8) + [0, 0, 0, 0, 0, 0], path: "z.ppm")
        }
        #expect(throws: PPMError.tooLarge(path: "b.ppm", width: 100, height: 100, maxPixelCount: 9999)) {
            try PPMImage.decode(Array("P6\n100 100\n255\n".utf8), path: "b.ppm", maxPixelCount: 9999)
        }
        let error = #expect(throws: PPMError.self) {
            try PPMImage.read(contentsOf: URL(fileURLWithPath: "/nonexistent/a.ppm"))
        }
        #expect(error?.description.contains("/nonexistent/a.ppm") == true)
    }
}
