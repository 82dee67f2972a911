// The input contract for face crops in every pixel layout, and alignment feeding the network.

import Foundation
import Testing

@testable import AuraFace

@Suite struct PreprocessingTests {
    static func uniformCrop(_ format: PixelFormat, red: UInt8, green: UInt8, blue: UInt8) throws
        -> PixelBuffer
    {
        let pixel: [UInt8] =
            switch format {
            case .rgb: [red, green, blue]
            case .bgr: [blue, green, red]
            case .rgba: [red, green, blue, 255]
            case .bgra: [blue, green, red, 7]
            case .gray: [green]
            }
        let bytes = Array([[UInt8]](repeating: pixel, count: 112 * 112).joined())
        return try PixelBuffer(width: 112, height: 112, format: format, bytes: bytes)
    }

    @Test func uniformColourNormalizesPerChannel() throws {
        let metadata = WeightFileMetadata(architecture: IResNetArchitecture.r100)
        for format in [PixelFormat.rgb, .bgr, .rgba, .bgra] {
            let crop = try Self.uniformCrop(format, red: 200, green: 100, blue: 50)
            let tensor = try RGBImage.normalizedBatch([crop.rgbImage()], metadata: metadata)
            #expect(tensor.count == 3 * 112 * 112)
            let plane = 112 * 112
            let expected: [Float] = [0.5686275, -0.2156863, -0.6078432]
            for channel in 0..<3 {
                let values = tensor[(channel * plane)..<((channel + 1) * plane)]
                #expect(
                    values.allSatisfy { Swift.abs($0 - expected[channel]) < 1e-6 },
                    "\(format) channel \(channel): \(values.first!) expected \(expected[channel])")
            }
        }
    }

    @Test func grayIsCopiedToAllChannels() throws {
        let crop = try Self.uniformCrop(.gray, red: 0, green: 90, blue: 0)
        let image = crop.rgbImage()
        #expect(image.pixels.allSatisfy { $0 == 90 })
    }

    @Test func paddedRowsReadLikePackedRows() throws {
        var random = SeededRandom(seed: 11)
        let packed = (0..<(5 * 4 * 4)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        var padded: [UInt8] = []
        for row in 0..<4 {
            padded += packed[(row * 20)..<((row + 1) * 20)] + [1, 2, 3]
        }
        let a = try PixelBuffer(width: 5, height: 4, format: .bgra, bytes: packed)
        let b = try PixelBuffer(width: 5, height: 4, format: .bgra, bytesPerRow: 23, bytes: padded)
        #expect(a.rgbImage() == b.rgbImage())
        #expect(a.rgbImage().pixels[0] == packed[2])
    }

    @Test func pixelBufferRejectsShortData() {
        #expect(throws: ImageInputError.self) {
            try PixelBuffer(width: 4, height: 2, format: .rgb, bytes: [UInt8](repeating: 0, count: 23))
        }
        #expect(throws: ImageInputError.self) {
            try PixelBuffer(width: 4, height: 2, format: .rgb, bytesPerRow: 11, bytes: [UInt8](repeating: 0, count: 64))
        }
        #expect(throws: ImageInputError.self) {
            try PixelBuffer(width: 0, height: 2, format: .rgb, bytes: [])
        }
        let error = #expect(throws: ImageInputError.self) {
            try PixelBuffer(width: 4, height: 2, format: .bgra, bytes: [UInt8](repeating: 0, count: 31))
        }
        #expect(error?.description.contains("found 31 bytes") == true)
    }

    @Test func warpReadsEveryPixelFormat() throws {
        var random = SeededRandom(seed: 3)
        let rgb = (0..<(40 * 30 * 3)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let photo = try PixelBuffer(width: 40, height: 30, format: .rgb, bytes: rgb)
        let transform = AffineMatrix(1.3, 0.4, -5, -0.4, 1.3, 8)
        let reference = AffineWarp.warp(photo, transform: transform, width: 24, height: 24)
        var bgr: [UInt8] = []
        var bgra: [UInt8] = []
        for index in 0..<(40 * 30) {
            let (r, g, b) = (rgb[3 * index], rgb[3 * index + 1], rgb[3 * index + 2])
            bgr += [b, g, r]
            bgra += [b, g, r, 255]
        }
        for buffer in [
            try PixelBuffer(width: 40, height: 30, format: .bgr, bytes: bgr),
            try PixelBuffer(width: 40, height: 30, format: .bgra, bytes: bgra),
        ] {
            let crop = AffineWarp.warp(buffer, transform: transform, width: 24, height: 24)
            #expect(crop == reference, "\(buffer.format)")
        }
    }

    /// A tiny network with a 112x112 input, so crops from the 112 template fit it.
    static func tinyModel() throws -> AuraFaceModel {
        let architecture = IResNetArchitecture(
            stageDepths: [1, 1, 1, 1], stageWidths: [4, 4, 8, 8], stemWidth: 4, embeddingSize: 8,
            inputSize: 112)
        return try AuraFaceModel(safeTensors: SyntheticWeights.file(architecture, seed: 9))
    }

    @Test func cropAndRealignedCropEmbedTheSame() throws {
        let model = try Self.tinyModel()
        var random = SeededRandom(seed: 21)
        let bytes = (0..<(112 * 112 * 3)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let crop = try PixelBuffer(width: 112, height: 112, format: .rgb, bytes: bytes)

        let direct = try model.embeddings(faces: [crop])[0]
        let landmarks = try FaceLandmarks(ArcFaceTemplate.points112)
        let realigned = try model.embed(photo: crop, landmarks: landmarks)

        #expect(realigned.face.image.pixels == bytes)
        #expect(realigned.face.rmsResidual < 1e-9)
        #expect(realigned.embedding == direct)
        #expect(realigned.rawNorm > 0)
    }

    @Test func bgrCropEmbedsLikeRgbCrop() throws {
        let model = try Self.tinyModel()
        let rgb = try Self.uniformCrop(.rgb, red: 200, green: 100, blue: 50)
        let bgr = try Self.uniformCrop(.bgr, red: 200, green: 100, blue: 50)
        let embeddings = try model.embeddings(faces: [rgb, bgr])
        #expect(embeddings[0] == embeddings[1])
        let swapped = try Self.uniformCrop(.rgb, red: 50, green: 100, blue: 200)
        #expect(try model.embeddings(faces: [swapped])[0] != embeddings[0])
    }

    @Test func wrongCropSizeIsRejected() throws {
        let model = try Self.tinyModel()
        let small = try PixelBuffer(width: 8, height: 8, format: .gray, bytes: [UInt8](repeating: 1, count: 64))
        #expect(throws: ImageInputError.sizeMismatch(expected: 112, width: 8, height: 8)) {
            try model.embeddings(faces: [small])
        }
    }
}
