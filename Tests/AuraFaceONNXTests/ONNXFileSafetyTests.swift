// ONNX files that change on disk after they were opened, and ONNX files cut at every length.
// The reader copies files into memory instead of mapping them: with a mapping, a file
// truncated by another process makes the next read of the lost pages kill the process
// with SIGBUS, which no test could catch.

import AuraFace
import Foundation
import Testing

import AuraFaceONNX

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Sets the size of the file at `url` in place, as another process truncating it would.
private func truncateFile(_ url: URL, to size: Int) throws {
    guard truncate(url.path, off_t(size)) == 0 else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
    }
}

/// Returns the converted tensors as name -> values, for comparing two conversions.
private func tensorValues(_ converted: ConvertedModel) -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: converted.tensors.map { ($0.name, $0.values) })
}

@Suite struct ONNXFileSafetyTests {
    @Test(arguments: ["empty", "half", "replaced"])
    func modelSurvivesFileChangeAfterRead(change: String) throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let bytes = TinyIResNet().build().graph.encoded
        let url = folder.appendingPathComponent("tiny.onnx")
        try Data(bytes).write(to: url)
        let expected = tensorValues(try convertGraph(TinyIResNet().build().graph))

        let model = try ONNXModel(contentsOf: url)
        switch change {
        case "empty":
            try truncateFile(url, to: 0)
        case "half":
            try truncateFile(url, to: bytes.count / 2)
        default:
            // Another model written over the path by rename, as an atomic writer does.
            let other = folder.appendingPathComponent("other.onnx")
            try Data(TinyIResNet(seed: 99).build().graph.encoded).write(to: other)
            #expect(rename(other.path, url.path) == 0)
        }

        let converted = try ONNXConverter.convert(model, sourceFile: "tiny.onnx")
        #expect(tensorValues(converted) == expected)
        #expect(converted.metadata.sourceSHA256 == SHA256.hexDigest(of: bytes))
    }

    @Test func externalDataTruncatedBeforeUseIsTooShort() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let values: [Float] = [1, 2, 3, 4]
        let dataURL = folder.appendingPathComponent("w.bin")
        try Data(rawBytes(values)).write(to: dataURL)
        let encoded = TestTensor(
            name: "w", dims: [4], dataType: 1,
            storage: .external([("location", "w.bin"), ("offset", "0"), ("length", "16")])
        ).encoded
        var reader = ProtobufReader(storage: ByteStorage(copying: encoded))
        let tensor = try ONNXTensor(decoding: &reader, externalDataDirectory: folder)

        // External data is read when the values are asked for, so a file cut before then is
        // reported as too short instead of being mapped past its end.
        try truncateFile(dataURL, to: 6)
        let error = try #require(throws: ONNXError.self) { try tensor.floatValues() }
        #expect(
            error
                == .externalDataFileTooShort(
                    tensor: "w", file: dataURL.path, fileSize: 6, needed: 16))

        try Data(rawBytes(values)).write(to: dataURL)
        let read = try tensor.floatValues()
        try truncateFile(dataURL, to: 0)
        #expect(read == values)
    }

    @Test func modelCutAtEveryLengthIsRejected() throws {
        // A small graph keeps the loop over every prefix fast. A prefix that ends on a field
        // boundary is a valid protobuf, so the converter must reject what is missing.
        let graph = TinyIResNet(depths: [1, 1, 1, 1], widths: [2, 2, 2, 2], stemWidth: 2).build().graph
        #expect(try !convertGraph(graph).tensors.isEmpty)
        let bytes = graph.encoded
        var protobufErrors = 0
        for length in 0..<bytes.count {
            do {
                let model = try ONNXModel(
                    storage: ByteStorage(copying: bytes.prefix(length)),
                    externalDataDirectory: nil, path: "cut.onnx")
                _ = try ONNXConverter.convert(model, sourceFile: "cut.onnx")
                Issue.record("prefix of \(length) of \(bytes.count) bytes was converted")
            } catch let error as ONNXError {
                guard case .malformedProtobuf(let path, _) = error else {
                    Issue.record("prefix of \(length) bytes: expected malformedProtobuf, found \(error)")
                    continue
                }
                #expect(path == "cut.onnx")
                protobufErrors += 1
            } catch is ConversionError {
                continue
            }
        }
        // Most cuts fall inside a field, so most prefixes must fail in the protobuf reader.
        #expect(protobufErrors > bytes.count / 2)
    }

    @Test func readingDirectoryIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: ONNXError.self) { try ONNXModel(contentsOf: folder) }
        #expect(error == .unreadableFile(path: folder.path, reason: "expected a regular file, found a directory"))
    }
}
