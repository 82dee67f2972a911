// Hostile and damaged inputs for the readers of the AuraFace target. They include files cut at
// every length, headers that declare more than the file holds, and images that declare huge
// or empty sizes. Others are colour spaces the reader does not convert, degenerate landmarks,
// and a weight file that changes on disk while a model made from it is loaded.

import Foundation
import Testing

@testable import AuraFace

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Calls `decode` on every proper prefix of `bytes` and records a failure for each prefix
/// that decodes or throws something other than `E`. Returns the errors, for further checks.
private func errorsForEveryPrefix<E: Error>(
    of bytes: [UInt8], as _: E.Type, sourceLocation: SourceLocation = #_sourceLocation,
    _ decode: ([UInt8]) throws -> Void
) -> [E] {
    var errors: [E] = []
    for length in 0..<bytes.count {
        do {
            try decode(Array(bytes.prefix(length)))
            Issue.record(
                "prefix of \(length) of \(bytes.count) bytes was accepted",
                sourceLocation: sourceLocation)
        } catch let error as E {
            errors.append(error)
        } catch {
            Issue.record(
                "prefix of \(length) bytes: expected \(E.self), found \(error)",
                sourceLocation: sourceLocation)
        }
    }
    return errors
}

/// Returns a copy of `jpeg` whose first SOF0 frame header declares `width` x `height`.
private func withFrameSize(_ jpeg: [UInt8], width: Int, height: Int) throws -> [UInt8] {
    var bytes = jpeg
    var offset = 2
    while offset + 4 <= bytes.count {
        #expect(bytes[offset] == 0xFF, "marker at byte \(offset)")
        let marker = bytes[offset + 1]
        let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        if marker == 0xC0 {
            // SOF0: length (2), precision (1), height (2), width (2), all big-endian.
            bytes[offset + 5] = UInt8(height >> 8)
            bytes[offset + 6] = UInt8(height & 0xFF)
            bytes[offset + 7] = UInt8(width >> 8)
            bytes[offset + 8] = UInt8(width & 0xFF)
            return bytes
        }
        offset += 2 + length
    }
    throw CocoaError(.fileReadCorruptFile)
}

@Suite struct BadInputTests {
    // MARK: Weight files

    static func smallWeightFile() -> [UInt8] {
        var writer = SafeTensorsWriter()
        writer.metadata = ["format": "test"]
        writer.add(name: "a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        writer.add(name: "b", shape: [2], values: [7, 8])
        return writer.serialized()
    }

    @Test func safeTensorsCutAtEveryLengthIsRejected() throws {
        let bytes = Self.smallWeightFile()
        #expect(try SafeTensorsFile(bytes: bytes, path: "w.safetensors").entries.count == 2)
        let errors = errorsForEveryPrefix(of: bytes, as: WeightFileError.self) {
            _ = try SafeTensorsFile(bytes: $0, path: "cut.safetensors")
        }
        #expect(errors.count == bytes.count)
        for error in errors {
            guard case .invalidSafeTensors(let path, _) = error else {
                Issue.record("expected invalidSafeTensors, found \(error)")
                continue
            }
            #expect(path == "cut.safetensors")
        }
    }

    @Test(arguments: [
        ("[8, 0]", "expected [begin, end] with 0 <= begin <= end"),
        ("[0, 1099511627776]", "needs 8 bytes, but data_offsets [0, 1099511627776] cover 1099511627776"),
        ("[0]", "expected [begin, end] with 0 <= begin <= end"),
        ("[-8, 0]", "expected [begin, end] with 0 <= begin <= end"),
    ])
    func safeTensorsOffsetsOutOfRangeAreRejected(offsets: String, reason: String) throws {
        let header = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": "# + offsets + "}}"
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.utf8.count) >> (8 * UInt64($0))) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 8)
        let error = #expect(throws: WeightFileError.self) {
            _ = try SafeTensorsFile(bytes: bytes, path: "offsets.safetensors")
        }
        #expect(error?.description.contains("'offsets.safetensors'") == true, "\(String(describing: error))")
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test(arguments: ["empty", "half", "replaced"])
    func loadedModelSurvivesWeightFileChange(change: String) throws {
        let architecture = SyntheticWeights.tinyArchitecture
        let file = try SyntheticWeights.file(architecture, seed: 3)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.safetensors")
        try writeFileAtomically(file.bytes, to: url)

        let model = try AuraFaceModel(contentsOf: url)
        var random = SeededRandom(seed: 77)
        let input = random.floats(3 * architecture.inputSize * architecture.inputSize)
        let before = try model.rawEmbeddings(normalizedInput: input, batchSize: 1)

        switch change {
        case "empty":
            #expect(truncate(url.path, 0) == 0)
        case "half":
            #expect(truncate(url.path, off_t(file.bytes.count / 2)) == 0)
        default:
            let other = try SyntheticWeights.file(architecture, seed: 4)
            try writeFileAtomically(other.bytes, to: url)
        }

        let after = try model.rawEmbeddings(normalizedInput: input, batchSize: 1)
        #expect(after == before)
        // A truncated file is rejected when it is loaded again.
        if change != "replaced" {
            #expect(throws: WeightFileError.self) { try AuraFaceModel(contentsOf: url) }
        }
    }

    @Test func weightFileShrinkingMidLoadGivesReadError() throws {
        let bytes = Self.smallWeightFile()
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.safetensors")
        try writeFileAtomically(bytes, to: url)

        let error = #expect(throws: WeightFileError.self) {
            try SafeTensorsFileReader.withOpened(path: url.path) { file throws(WeightFileError) in
                // The header is checked; now another process cuts tensor 'a' (24 bytes) short.
                let a = file.header.entry(named: "a")!
                let start = file.header.dataStart
                #expect(truncate(url.path, off_t(start + 4)) == 0)
                _ = try file.floats(for: a)
            }
        }
        let start = try SafeTensorsFile(bytes: bytes, path: url.path).dataStart
        #expect(
            error == .unreadable(
                path: url.path,
                reason: "tensor 'a' needs bytes \(start)..<\(start + 24), but the file now has "
                    + "\(start + 4) bytes: it shrank after it was opened"))
    }

    @Test func shortWeightFileRejectedBeforeDataRead() throws {
        // The header declares a 64 GiB tensor, but the file contains 8 data bytes. Reading the
        // data, or allocating from the declared size, would fail in another way.
        let declared = 1 << 36
        let header = #"{"a": {"dtype": "F32", "shape": [\#(declared / 4)], "data_offsets": [0, \#(declared)]}}"#
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.utf8.count) >> (8 * UInt64($0))) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 8)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.safetensors")
        try writeFileAtomically(bytes, to: url)

        var bodyRan = false
        let error = #expect(throws: WeightFileError.self) {
            try SafeTensorsFileReader.withOpened(path: url.path) { _ throws(WeightFileError) in bodyRan = true }
        }
        #expect(!bodyRan)
        #expect(
            error == .invalidSafeTensors(
                path: url.path,
                reason: "tensor data ends at byte \(declared) of the data section, "
                    + "but the file holds only 8 data bytes"))
        let modelError = #expect(throws: WeightFileError.self) { try AuraFaceModel(contentsOf: url) }
        #expect(modelError == error)
    }

    @Test func diskAndMemoryLoadsMatch() throws {
        let architecture = SyntheticWeights.tinyArchitecture
        let file = try SyntheticWeights.file(architecture, seed: 5)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.safetensors")
        try writeFileAtomically(file.bytes, to: url)

        var random = SeededRandom(seed: 78)
        let input = random.floats(2 * 3 * architecture.inputSize * architecture.inputSize)
        let fromDisk = try AuraFaceModel(contentsOf: url).rawEmbeddings(normalizedInput: input, batchSize: 2)
        let fromMemory = try AuraFaceModel(safeTensors: file).rawEmbeddings(normalizedInput: input, batchSize: 2)
        #expect(fromDisk == fromMemory)
    }

    @Test func nonFiniteWeightOnDiskIsRejected() throws {
        let file = try SyntheticWeights.file(SyntheticWeights.tinyArchitecture, editTensors: { tensors in
            let index = tensors.firstIndex { $0.name == "layer2.1.conv1.weight" }!
            tensors[index].values[5] = -.infinity
        })
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.safetensors")
        try writeFileAtomically(file.bytes, to: url)

        #expect(throws: WeightFileError.nonFiniteValues(path: url.path, tensor: "layer2.1.conv1.weight", count: 1)) {
            try AuraFaceModel(contentsOf: url)
        }
    }

    // MARK: .npy and pickle

    @Test func npyCutAtEveryLengthIsRejected() throws {
        let bytes = try NpyArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]).serialized()
        let errors = errorsForEveryPrefix(of: bytes, as: NpyError.self) {
            _ = try NpyArray(bytes: $0, path: "cut.npy")
        }
        #expect(errors.count == bytes.count)
        #expect(errors.allSatisfy { $0.description.contains("cut.npy") })
    }

    @Test func pickleCutAtEveryLengthIsRejected() throws {
        let bytes = decodeHex(PickleTests.numpyProtocol4)
        _ = try PickleReader.decode(bytes, path: "whole.bin")
        let errors = errorsForEveryPrefix(of: bytes, as: PickleError.self) {
            _ = try PickleReader.decode($0, path: "cut.bin")
        }
        #expect(errors.count == bytes.count)
        #expect(errors.allSatisfy { $0.path == "cut.bin" })
    }

    // MARK: Images

    @Test func ppmCutAtEveryLengthIsRejected() throws {
        let image = try RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 14) })
        let bytes = PPMImage.encode(image)
        let errors = errorsForEveryPrefix(of: bytes, as: PPMError.self) {
            _ = try PPMImage.decode($0, path: "cut.ppm")
        }
        #expect(errors.count == bytes.count)
        #expect(errors.allSatisfy { $0.description.contains("cut.ppm") })
    }

    @Test func ppmHugeHeaderIsRejectedBeforeDecoding() throws {
        // No samples follow the header, so only a check of the declared size can give tooLarge.
        let bytes = Array("P6\n100000 100000\n255\n".utf8)
        #expect(
            throws: PPMError.tooLarge(
                path: "huge.ppm", width: 100_000, height: 100_000,
                maxPixelCount: PPMImage.defaultMaxPixelCount)
        ) {
            try PPMImage.decode(bytes, path: "huge.ppm")
        }
    }

    @Test(arguments: ["P6\n0 5\n255\n", "P6\n5 0\n255\n", "P5\n0 0\n255\n"])
    func ppmZeroSizeIsRejected(header: String) {
        let error = #expect(throws: PPMError.self) {
            try PPMImage.decode(Array(header.utf8), path: "empty.ppm")
        }
        guard case .invalidHeader(let path, let reason) = error else {
            Issue.record("expected invalidHeader, found \(String(describing: error))")
            return
        }
        #expect(path == "empty.ppm")
        #expect(reason.contains("must be positive"))
    }

    @Test func pngHugeHeaderIsRejectedBeforeDecoding() throws {
        let ihdr = TestPNG.bigEndian32(100_000) + TestPNG.bigEndian32(100_000) + [8, 2, 0, 0, 0]
        let bytes = TestPNG.signature + TestPNG.chunk("IHDR", ihdr) + TestPNG.chunk("IEND", [])
        #expect(
            throws: PNGError.tooLarge(
                path: "huge.png", width: 100_000, height: 100_000,
                maxPixelCount: PNGImage.defaultMaxPixelCount)
        ) {
            _ = try PNGImage.decode(bytes, path: "huge.png")
        }
    }

    @Test(arguments: [(0, 4), (4, 0), (0, 0)])
    func pngZeroSizeIsRejected(width: Int, height: Int) throws {
        let ihdr = TestPNG.bigEndian32(width) + TestPNG.bigEndian32(height) + [8, 2, 0, 0, 0]
        let bytes = TestPNG.signature + TestPNG.chunk("IHDR", ihdr) + TestPNG.chunk("IEND", [])
        let error = #expect(throws: PNGError.self) {
            _ = try PNGImage.decode(bytes, path: "empty.png")
        }
        guard case .corrupt(let path, let reason) = error else {
            Issue.record("expected corrupt, found \(String(describing: error))")
            return
        }
        #expect(path == "empty.png")
        #expect(
            reason == "IHDR declares \(width)x\(height) pixels; expected a width and height of 1 or more")
    }

    @Test func jpegCutAtEveryLengthIsRejected() throws {
        let pixels = JPEGTests.gradient(width: 8, height: 8)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 8, height: 8, input: .rgb, quality: 90))
        let errors = errorsForEveryPrefix(of: jpeg, as: JPEGError.self) {
            _ = try JPEGImage.decode($0, path: "cut.jpg")
        }
        #expect(errors.count == jpeg.count)
        #expect(errors.allSatisfy { $0.description.contains("cut.jpg") })
    }

    @Test func jpegHugeHeaderIsRejectedBeforeDecoding() throws {
        let pixels = JPEGTests.gradient(width: 16, height: 16)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 16, height: 16, input: .rgb, quality: 90))
        // 60000 x 60000 is 3.6 gigapixels; the scan data covers 16 x 16.
        let huge = try withFrameSize(jpeg, width: 60_000, height: 60_000)
        #expect(
            throws: JPEGError.tooLarge(
                path: "huge.jpg", width: 60_000, height: 60_000,
                maxPixelCount: JPEGImage.defaultMaxPixelCount)
        ) {
            try JPEGImage.decode(huge, path: "huge.jpg")
        }
    }

    @Test func jpegZeroHeightIsRejected() throws {
        let pixels = JPEGTests.gradient(width: 16, height: 16)
        let jpeg = try #require(JPEGImage.encode(pixels, width: 16, height: 16, input: .rgb, quality: 90))
        let empty = try withFrameSize(jpeg, width: 16, height: 0)
        let error = #expect(throws: JPEGError.self) { try JPEGImage.decode(empty, path: "empty.jpg") }
        switch error {
        case .corrupt(let path, _), .truncated(let path, _):
            #expect(path == "empty.jpg")
        default:
            Issue.record("expected corrupt or truncated, found \(String(describing: error))")
        }
    }

    @Test func plainCMYKJPEGIsRejected() throws {
        // TurboJPEG writes 4-component JPEGs as YCCK, marked by Adobe APP14 transform 2.
        // Transform 0 marks the same components as plain CMYK.
        let cmyk = [UInt8](repeating: 40, count: 16 * 16 * 4)
        var jpeg = try #require(JPEGImage.encode(cmyk, width: 16, height: 16, input: .cmyk, quality: 90))
        let adobe = Array("Adobe".utf8)
        var found: Int?
        for offset in 0..<(jpeg.count - 16) where jpeg[offset] == 0xFF && jpeg[offset + 1] == 0xEE {
            if Array(jpeg[(offset + 4)..<(offset + 9)]) == adobe {
                found = offset
                break
            }
        }
        let start = try #require(found, "no Adobe APP14 segment")
        // APP14: marker (2), length (2), "Adobe" (5), version (2), flags0 (2), flags1 (2), transform (1).
        #expect(jpeg[start + 15] == 2)
        jpeg[start + 15] = 0
        let error = #expect(throws: JPEGError.self) { try JPEGImage.decode(jpeg, path: "print.jpg") }
        #expect(error == .unsupportedColorSpace(path: "print.jpg", colorSpace: "CMYK"))
        #expect(error?.description.contains("convert it to RGB first") == true)
    }

    // MARK: Landmarks

    @Test func collinearLandmarksAreRejected() throws {
        // Five points on one line, spread like a face's width: no similarity maps a line onto
        // the template's two eyes, nose and mouth corners.
        let points = (0..<5).map { Point2D(x: 40 + Double($0) * 10, y: 60 + Double($0) * 5) }
        let error = #expect(throws: AlignmentError.self) {
            try FaceAligner().fit(FaceLandmarks(points))
        }
        switch error {
        case .residualTooLarge, .mirroredLandmarks:
            break
        default:
            Issue.record("expected residualTooLarge or mirroredLandmarks, found \(String(describing: error))")
        }
    }
}
