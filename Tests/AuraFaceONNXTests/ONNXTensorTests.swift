import AuraFaceONNX
import Foundation
import Testing

private func decodeTensor(_ tensor: TestTensor, folder: URL? = nil) throws -> ONNXTensor {
    var reader = ProtobufReader(storage: ByteStorage(copying: tensor.encoded))
    return try ONNXTensor(decoding: &reader, externalDataDirectory: folder)
}

private func floatError(_ tensor: TestTensor, folder: URL? = nil) throws -> ONNXError {
    let decoded = try decodeTensor(tensor, folder: folder)
    return try #require(throws: ONNXError.self) { try decoded.floatValues() }
}

@Suite struct ONNXTensorTests {
    // MARK: In-file data

    @Test func rawFloatsDecode() throws {
        let tensor = try decodeTensor(.float("w", [2, 2], [1, -2, 3.5, 0]))
        #expect(try tensor.shape() == [2, 2])
        #expect(try tensor.floatValues() == [1, -2, 3.5, 0])
    }

    @Test func scalarHasOneElement() throws {
        let tensor = try decodeTensor(.float("s", [], [7]))
        #expect(try tensor.elementCount() == 1)
        #expect(try tensor.floatValues() == [7])
    }

    @Test func shortRawDataIsRejected() throws {
        let error = try floatError(
            TestTensor(
                name: "w", dims: [2, 2], dataType: 1, storage: .raw(rawBytes([1, 2, 3] as [Float])))
        )
        #expect(
            error
                == .dataLengthMismatch(
                    tensor: "w", field: "raw_data", expected: 16, found: 12, unit: "bytes"))
        #expect(error.description == "tensor 'w': raw_data has 12 bytes, expected 16 for its dims")
    }

    @Test func longRawDataIsRejected() throws {
        let error = try floatError(
            TestTensor(
                name: "w", dims: [2, 2], dataType: 1,
                storage: .raw(rawBytes([1, 2, 3, 4, 5] as [Float]))))
        #expect(error.description == "tensor 'w': raw_data has 20 bytes, expected 16 for its dims")
    }

    @Test func negativeDimIsRejected() throws {
        let error = try floatError(
            TestTensor(name: "w", dims: [2, -1], dataType: 1, storage: .raw([])))
        #expect(error == .negativeDimension(tensor: "w", dims: [2, -1]))
        #expect(
            error.description
                == "tensor 'w' has dims [2, -1]; expected every dimension to be 0 or more")
    }

    @Test(arguments: [[Int64.max, 2], [1 << 31, 1 << 31], [1 << 62, 2]])
    func overflowingDimsAreRejected(dims: [Int64]) throws {
        let error = try floatError(
            TestTensor(name: "w", dims: dims, dataType: 1, storage: .raw([])))
        #expect(error == .elementCountOverflow(tensor: "w", dims: dims))
        #expect(
            error.description
                == "tensor 'w' has dims \(dims), whose byte count does not fit in a 64-bit integer")
    }

    @Test func zeroDimWithHugeOtherDimIsEmpty() throws {
        let tensor = try decodeTensor(
            TestTensor(name: "e", dims: [0, 1 << 40], dataType: 1, storage: .raw([])))
        #expect(try tensor.floatValues() == [])
    }

    @Test(arguments: [(Int32(7), "INT64"), (8, "STRING"), (10, "FLOAT16"), (42, "data type 42")])
    func nonFloatTypeIsRejected(dataType: Int32, name: String) throws {
        let error = try floatError(
            TestTensor(
                name: "w", dims: [1], dataType: dataType, storage: .raw([0, 0, 0, 0, 0, 0, 0, 0])))
        #expect(
            error
                == .unsupportedDataType(
                    tensor: "w", found: ONNXDataType(rawValue: dataType),
                    expected: "FLOAT or DOUBLE"))
        #expect(error.description == "tensor 'w' has data type \(name); expected FLOAT or DOUBLE")
    }

    @Test func floatTensorIsRejectedAsIntegers() throws {
        let tensor = try decodeTensor(.float("shape", [2], [0, -1]))
        let error = try #require(throws: ONNXError.self) { try tensor.int64Values() }
        #expect(error.description == "tensor 'shape' has data type FLOAT; expected INT64 or INT32")
    }

    @Test func typedFieldsDecode() throws {
        #expect(
            try decodeTensor(
                TestTensor(name: "f", dims: [2], dataType: 1, storage: .floatData([1, 2]))
            ).floatValues() == [1, 2])
        #expect(
            try decodeTensor(
                TestTensor(name: "d", dims: [2], dataType: 11, storage: .doubleData([0.5, -4]))
            ).floatValues() == [0.5, -4])
        #expect(
            try decodeTensor(
                TestTensor(name: "i", dims: [2], dataType: 7, storage: .int64Data([0, -1]))
            ).int64Values() == [0, -1])
        #expect(
            try decodeTensor(
                TestTensor(name: "j", dims: [2], dataType: 6, storage: .int32Data([3, -1]))
            ).int64Values() == [3, -1])
        let raw32 = TestTensor(
            name: "k", dims: [2], dataType: 6, storage: .raw([1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(try decodeTensor(raw32).int64Values() == [1, -1])
        let rawDouble = TestTensor(
            name: "x", dims: [1], dataType: 11, storage: .raw([0, 0, 0, 0, 0, 0, 0xF8, 0x3F]))
        #expect(try decodeTensor(rawDouble).floatValues() == [1.5])
    }

    @Test func typedFieldOfWrongCountIsRejected() throws {
        let error = try floatError(
            TestTensor(name: "w", dims: [4], dataType: 1, storage: .floatData([1, 2, 3])))
        #expect(error.description == "tensor 'w': float_data has 3 values, expected 4 for its dims")
    }

    @Test func tensorWithoutDataIsRejected() throws {
        let error = try floatError(TestTensor(name: "w", dims: [4], dataType: 1, storage: .none))
        #expect(
            error.description
                == "tensor 'w' has elements but no raw_data, typed data field or external data")
    }

    @Test func rawAndTypedDataTogetherAreRejected() throws {
        var writer = ProtobufWriter()
        TestTensor.float("w", [1], [1]).encode(into: &writer)
        writer.packedFloatField(4, [2])
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tensor = try ONNXTensor(decoding: &reader, externalDataDirectory: nil)
        let error = try #require(throws: ONNXError.self) { try tensor.floatValues() }
        #expect(error.description == "tensor 'w': the tensor has both raw_data and float_data")
    }

    @Test func segmentedTensorIsRejected() throws {
        var writer = ProtobufWriter()
        TestTensor.float("w", [1], [1]).encode(into: &writer)
        writer.messageField(3) { $0.int64Field(1, 0) }
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tensor = try ONNXTensor(decoding: &reader, externalDataDirectory: nil)
        let error = try #require(throws: ONNXError.self) { try tensor.floatValues() }
        #expect(
            error.description
                == "tensor 'w': segmented tensors (TensorProto.segment) are not supported")
    }

    // MARK: External data

    private func external(_ entries: [(key: String, value: String)], dims: [Int64] = [4])
        -> TestTensor
    {
        TestTensor(name: "w", dims: dims, dataType: 1, storage: .external(entries))
    }

    @Test func externalDataIsRead() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("data"), withIntermediateDirectories: true)
        try Data([9, 9, 9, 9, 9, 9, 9, 9] + rawBytes([1, 2, 3, 4] as [Float]) + [9]).write(
            to: folder.appendingPathComponent("data/w.bin"))
        let tensor = try decodeTensor(
            external([
                ("location", "data/w.bin"), ("offset", "8"), ("length", "16"),
                ("checksum", "ignored"),
            ]), folder: folder)
        #expect(try tensor.floatValues() == [1, 2, 3, 4])
    }

    @Test func externalDataWithoutOffsetStartsAtZero() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(rawBytes([5, 6, 7, 8] as [Float])).write(
            to: folder.appendingPathComponent("w.bin"))
        #expect(
            try decodeTensor(external([("location", "w.bin")]), folder: folder).floatValues() == [
                5, 6, 7, 8,
            ])
    }

    @Test func absoluteExternalPathIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try floatError(external([("location", "/etc/hostname")]), folder: folder)
        #expect(
            error.description
                == "tensor 'w': external_data location '/etc/hostname' is invalid: absolute paths are not allowed; "
                + "expected a path relative to the model's folder")
    }

    @Test(arguments: ["../w.bin", "data/../../w.bin", ".."])
    func climbingExternalPathIsRejected(location: String) throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try floatError(external([("location", location)]), folder: folder)
        #expect(
            error.description
                == "tensor 'w': external_data location '\(location)' is invalid: '..' is not allowed; "
                + "expected a path inside the model's folder")
    }

    @Test func symlinkOutOfFolderIsRejected() throws {
        let folder = try makeTemporaryFolder()
        let outside = try makeTemporaryFolder()
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: outside)
        }
        try Data(rawBytes([1, 2, 3, 4] as [Float])).write(
            to: outside.appendingPathComponent("w.bin"))
        try FileManager.default.createSymbolicLink(
            at: folder.appendingPathComponent("link.bin"),
            withDestinationURL: outside.appendingPathComponent("w.bin"))
        let error = try floatError(external([("location", "link.bin")]), folder: folder)
        guard case let .invalidExternalData(tensor, key, value, reason) = error else {
            Issue.record("expected invalidExternalData, found \(error)")
            return
        }
        #expect(tensor == "w")
        #expect(key == "location")
        #expect(value == "link.bin")
        #expect(reason.contains("outside the model's folder"))
    }

    @Test func missingExternalFileIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try floatError(external([("location", "absent.bin")]), folder: folder)
        let path = folder.appendingPathComponent("absent.bin").path
        #expect(
            error
                == .externalDataFileUnreadable(
                    tensor: "w", file: path, reason: "No such file or directory"))
        #expect(
            error.description
                == "tensor 'w': cannot read its external data file '\(path)': No such file or directory"
        )
    }

    @Test func shortExternalFileIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([UInt8](repeating: 0, count: 20)).write(to: folder.appendingPathComponent("w.bin"))
        let error = try floatError(
            external([("location", "w.bin"), ("offset", "8")]), folder: folder)
        let path = folder.appendingPathComponent("w.bin").path
        #expect(
            error == .externalDataFileTooShort(tensor: "w", file: path, fileSize: 20, needed: 24))
        #expect(
            error.description
                == "tensor 'w': external data file '\(path)' has 20 bytes, expected at least 24")
    }

    @Test func externalLengthMismatchIsRejected() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([UInt8](repeating: 0, count: 32)).write(to: folder.appendingPathComponent("w.bin"))
        let error = try floatError(
            external([("location", "w.bin"), ("length", "12")]), folder: folder)
        #expect(
            error.description
                == "tensor 'w': external_data length has 12 bytes, expected 16 for its dims")
    }

    @Test(arguments: [("offset", "-4"), ("offset", "abc"), ("length", "1e3")])
    func malformedExternalNumberIsRejected(key: String, value: String) throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try floatError(external([("location", "w.bin"), (key, value)]), folder: folder)
        #expect(
            error.description
                == "tensor 'w': external_data \(key) '\(value)' is invalid: expected a non-negative integer"
        )
    }

    @Test func externalDataWithoutLocationIsRejected() throws {
        let error = try floatError(
            external([("offset", "0")]), folder: URL(fileURLWithPath: "/tmp"))
        #expect(
            error.description
                == "tensor 'w': external_data location '' is invalid: missing; expected a file path relative to the model's folder"
        )
    }

    @Test func externalDataWithoutModelFolderIsRejected() throws {
        let error = try floatError(external([("location", "w.bin")]), folder: nil)
        #expect(
            error.description
                == "tensor 'w': external_data location 'w.bin' is invalid: the model was not read from a file, so there is no folder to look in"
        )
    }

    // MARK: Whole files

    @Test func truncatedModelFileIsRejected() throws {
        let bytes = TinyIResNet().build().graph.encoded
        let error = try #require(throws: ONNXError.self) {
            try ONNXModel(
                storage: ByteStorage(copying: bytes.prefix(bytes.count - 3)),
                externalDataDirectory: nil, path: "cut.onnx")
        }
        guard case let .malformedProtobuf(path, protobufError) = error else {
            Issue.record("expected malformedProtobuf, found \(error)")
            return
        }
        #expect(path == "cut.onnx")
        // Cutting the end shortens the graph, so the graph's length runs past the file's end.
        guard case .lengthPastEnd = protobufError.kind else {
            Issue.record("expected lengthPastEnd, found \(protobufError)")
            return
        }
        #expect(
            error.description.hasPrefix(
                "'cut.onnx' is not a valid ONNX file: invalid protobuf at byte "))
    }

    @Test func missingModelFileIsRejected() throws {
        let url = URL(fileURLWithPath: "/nonexistent-folder/model.onnx")
        let error = try #require(throws: ConversionError.self) {
            try ONNXConverter.convert(modelAt: url)
        }
        #expect(
            error
                == .invalidModel(
                    .unreadableFile(path: url.path, reason: "No such file or directory")))
        #expect(
            error.description
                == "cannot read '/nonexistent-folder/model.onnx': No such file or directory")
    }

    @Test func decodedModelKeepsGraphFields() throws {
        let built = TinyIResNet().build()
        let model = try ONNXModel(
            storage: ByteStorage(copying: built.graph.encoded), externalDataDirectory: nil,
            path: "m.onnx")
        #expect(model.irVersion == 6)
        #expect(model.producerName == "swift-tests")
        #expect(model.standardOpsetVersion == 11)
        #expect(model.graph.nodes.count == built.graph.nodes.count)
        #expect(model.graph.initializers.count == built.graph.initializers.count)
        #expect(
            model.graph.inputs.first?.shape == [.parameter("N"), .value(3), .value(16), .value(16)])
        #expect(model.graph.inputs.first?.elementType == .float)
        let conv = try #require(model.graph.nodes.first { $0.opType == "Conv" })
        #expect(conv.attribute("strides")?.ints == [1, 1])
        #expect(conv.attribute("group")?.i == 1)
    }
}
