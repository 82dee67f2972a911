// ONNX models and external data files that are not regular files, an external-data location
// that names the model's folder itself, and an empty model file. A FIFO used to block the
// open forever; the time limit turns such a regression into a failure.

import AuraFace
import Foundation
import Testing

import AuraFaceONNX

#if canImport(Glibc)
    import Glibc
#endif

private let fifoReason = "expected a regular file, found a FIFO (named pipe)"

/// Decodes a float tensor of 4 elements whose bytes live in the external file `location`.
private func externalTensor(location: String, folder: URL) throws -> ONNXTensor {
    let tensor = TestTensor(name: "w", dims: [4], dataType: 1, storage: .external([("location", location)]))
    var reader = ProtobufReader(storage: ByteStorage(copying: tensor.encoded))
    return try ONNXTensor(decoding: &reader, externalDataDirectory: folder)
}

@Suite(.timeLimit(.minutes(1))) struct ONNXFileKindTests {
    @Test func modelThatIsFIFOIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("model.onnx")
        try #require(mkfifo(fifo.path, 0o644) == 0)
        let error = try #require(throws: ONNXError.self) { try ONNXModel(contentsOf: fifo) }
        #expect(error == .unreadableFile(path: fifo.path, reason: fifoReason))
        #expect(throws: ConversionError.self) {
            try ONNXConverter.convert(modelAt: fifo)
        }
    }

    @Test func externalDataThatIsFIFOIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("w.bin")
        try #require(mkfifo(fifo.path, 0o644) == 0)
        let tensor = try externalTensor(location: "w.bin", folder: folder)
        let error = try #require(throws: ONNXError.self) { try tensor.floatValues() }
        #expect(error == .externalDataFileUnreadable(tensor: "w", file: fifo.path, reason: fifoReason))
        #expect(
            error.description
                == "tensor 'w': cannot read its external data file '\(fifo.path)': \(fifoReason)")
    }

    @Test(arguments: [".", "./", "sub/."])
    func externalLocationNamingTheFolderIsRejected(location: String) throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("sub"), withIntermediateDirectories: false)
        let tensor = try externalTensor(location: location, folder: folder)
        let error = try #require(throws: ONNXError.self) { try tensor.floatValues() }
        if location == "sub/." {
            // A subfolder is inside the model's folder but is not a file.
            guard case let .externalDataFileUnreadable(tensor, _, reason) = error else {
                Issue.record("expected externalDataFileUnreadable, found \(error)")
                return
            }
            #expect(tensor == "w")
            #expect(reason == "expected a regular file, found a directory")
        } else {
            let resolvedFolder = folder.resolvingSymlinksInPath().standardizedFileURL.path
            #expect(
                error
                    == .invalidExternalData(
                        tensor: "w", key: "location", value: location,
                        reason: "it names the model's folder '\(resolvedFolder)' itself; expected a file inside it"))
            #expect(!error.description.contains("outside"))
        }
    }

    @Test func emptyModelFileSaysItIsEmpty() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("empty.onnx")
        try Data().write(to: url)
        let error = try #require(throws: ONNXError.self) { try ONNXModel(contentsOf: url) }
        #expect(
            error == .unreadableFile(path: url.path, reason: "the file is empty (0 bytes); expected an ONNX model"))
        let conversionError = try #require(throws: ConversionError.self) {
            try ONNXConverter.convert(modelAt: url)
        }
        #expect(String(describing: conversionError).contains("the file is empty"))
        #expect(!String(describing: conversionError).contains("opset"))
    }
}
