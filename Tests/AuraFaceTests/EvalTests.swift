// Verification sets end to end: .bin bytes in both pickle layouts with PNG images, decoding,
// size checks, mirrored embeddings from a synthetic model, and the ROC plot.

import Foundation
import Testing

@testable import AuraFace

/// Makes a deterministic random RGB image, which differs from its mirror.
private func testImage(size: Int, seed: UInt64) -> RGBImage {
    var random = SeededRandom(seed: seed)
    let pixels = (0..<(size * size * 3)).map { _ in UInt8(random.next() % 256) }
    return try! RGBImage(width: size, height: size, pixels: pixels)
}

private func pngBytes(_ image: RGBImage) throws -> [UInt8] {
    try PNGImage.encode(image)
}

@Suite struct EvalTests {
    @Test func setReadsBothLayouts() throws {
        let images = try (0..<4).map { try pngBytes(testImage(size: 8, seed: UInt64($0))) }
        for data in [
            TestPickle.python2(images: images, isSame: [true, false]),
            TestPickle.protocol4(images: images, isSame: [true, false]),
        ] {
            let set = try VerificationSet(bytes: data, path: "set.bin")
            #expect(set.pairCount == 2)
            #expect(set.isSame == [true, false])
            #expect(set.encodedImages.map { Array($0) } == images)
            let decoded = try set.image(at: 3, size: 8)
            #expect(decoded == testImage(size: 8, seed: 3))
        }
    }

    /// An 8x8 JPEG of the color (200, 40, 90), written by Pillow 13 at quality 95, which
    /// decodes it to (201, 40, 90).
    static let solidJPEG =
        "ffd8ffe000104a46494600010100000100010000ffdb0043000201010101010201010102020202020403020202020504040304060506060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a0affdb004301020202020202050303050a0706070a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0affc00011080008000803012200021101031101ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f0100030101010101010101010000000000000102030405060708090a0bffc400b51100020102040403040705040400010277000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c03010002110311003f00f9de8a28ae73fd303fffd9"

    @Test func jpegImagesDecode() throws {
        let jpeg = decodeHex(Self.solidJPEG)
        let set = try VerificationSet(
            bytes: TestPickle.python2(images: [jpeg, jpeg], isSame: [true]), path: "set.bin")
        let image = try set.image(at: 1, size: 8)
        #expect(image.width == 8)
        #expect(image.height == 8)
        // Both decoders are libjpeg-turbo with the default integer IDCT; allow 1 level of slack.
        for (sample, expected) in zip(image.pixels, [UInt8]([201, 40, 90]).cycled(64)) {
            #expect(abs(Int(sample) - Int(expected)) <= 1)
        }
    }

    @Test func imageOfWrongSizeRejected() throws {
        let images = try [pngBytes(testImage(size: 8, seed: 1)), pngBytes(testImage(size: 6, seed: 2))]
        let set = try VerificationSet(bytes: TestPickle.python2(images: images, isSame: [true]), path: "set.bin")
        #expect(throws: VerificationSetError.imageSizeMismatch(path: "set.bin", index: 1, expected: 8, width: 6, height: 6)) {
            try set.image(at: 1, size: 8)
        }
        let message = VerificationSetError.imageSizeMismatch(
            path: "set.bin", index: 1, expected: 112, width: 96, height: 112
        ).description
        #expect(message.contains("96x112"))
        #expect(message.contains("112x112"))
    }

    @Test func unknownImageFormatRejected() throws {
        let images: [[UInt8]] = [Array("GIF89a....".utf8), Array("GIF89a....".utf8)]
        let set = try VerificationSet(bytes: TestPickle.protocol4(images: images, isSame: [false]), path: "set.bin")
        #expect(throws: VerificationSetError.self) {
            try set.image(at: 0, size: 8)
        }
        do {
            _ = try set.image(at: 0, size: 8)
        } catch {
            #expect("\(error)".contains("47 49 46 38"))
        }
    }

    @Test func imageCountMustBeTwicePairCount() {
        let data = TestPickle.python2(images: [[1], [2], [3]], isSame: [true])
        #expect(throws: VerificationSetError.self) {
            try VerificationSet(bytes: data, path: "set.bin")
        }
    }

    @Test func pickleOfOtherShapeRejected() {
        // PROTO 2, EMPTY_LIST, STOP: a bare list, not (images, issame).
        #expect(throws: VerificationSetError.invalidLayout(
            path: "set.bin", reason: "the pickle holds a list of 0 items, expected a 2-tuple (images, issame)")
        ) {
            try VerificationSet(bytes: [0x80, 0x02, 0x5d, 0x2e], path: "set.bin")
        }
    }

    @Test func mirrorFlipsRows() throws {
        let image = try RGBImage(width: 3, height: 2, pixels: Array(0..<18))
        let mirrored = image.horizontallyMirrored()
        #expect(mirrored.pixels == [6, 7, 8, 3, 4, 5, 0, 1, 2, 15, 16, 17, 12, 13, 14, 9, 10, 11])
        #expect(mirrored.horizontallyMirrored() == image)
    }

    /// Embeds a 20-pair set in batches that do not divide the image count, then checks every
    /// embedding against a one-image forward pass of the image or its mirror.
    @Test func embeddingsMatchSingleImagePasses() throws {
        let architecture = SyntheticWeights.tinyArchitecture
        let model = try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture))
        let size = architecture.inputSize
        let images = (0..<40).map { testImage(size: size, seed: UInt64(100 + $0)) }
        // Folds of two pairs, one same and one different, as the protocol needs both in each.
        let data = TestPickle.protocol4(
            images: try images.map(pngBytes), isSame: (0..<20).map { $0 % 2 == 0 })
        let set = try VerificationSet(bytes: data, path: "set.bin")

        var progress: [Int] = []
        let embeddings = try set.embeddings(model: model, batchSize: 16) { done, total in
            #expect(total == 40)
            progress.append(done)
        }
        #expect(progress == [16, 32, 40])
        for (index, image) in images.enumerated() {
            for (input, embedding) in [
                (image, embeddings.original[index]), (image.horizontallyMirrored(), embeddings.mirrored[index]),
            ] {
                let tensor = try RGBImage.normalizedBatch([input], metadata: model.metadata)
                let expected = try model.rawEmbeddings(normalizedInput: tensor, batchSize: 1)[0]
                expectClose(embedding, expected, tolerance: 1e-5, "image \(index)")
            }
        }
        #expect(embeddings.original[0] != embeddings.mirrored[0])

        let report = try set.evaluate(embeddings)
        #expect(report.pairCount == 20)
        #expect(report.result.foldAccuracies.count == 10)
        let norms = (embeddings.original + embeddings.mirrored).map { vector in
            vector.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        }
        #expect(abs(report.meanNorm - norms.reduce(0, +) / 80) < 1e-9)
    }

    @Test func rocPlotDrawsCurveAndAxes() {
        // A perfect classifier: (0, 0) -> (0, 1) -> (1, 1).
        let image = ROCPlot.image(falsePositiveRates: [0, 0, 1], truePositiveRates: [0, 1, 1], size: 256)
        #expect(image.width == 256)
        #expect(image.height == 256)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] {
            let index = (y * 256 + x) * 3
            return Array(image.pixels[index..<(index + 3)])
        }
        let margin = 256 / 16
        #expect(pixel(margin, 128) == [20, 80, 200], "curve along the left axis")
        #expect(pixel(128, margin) == [20, 80, 200], "curve along the top")
        #expect(pixel(2, 2) == [255, 255, 255], "background outside the plot")
        #expect(pixel(128, 256 - 1 - margin) == [0, 0, 0], "bottom axis")
    }
}

extension Array {
    /// Repeats the array `count` times.
    fileprivate func cycled(_ count: Int) -> [Element] {
        (0..<count).flatMap { _ in self }
    }
}
