import AuraFaceONNX
import Testing

/// Reads every field of a message, skipping their values, and descends into none.
private func skipAllFields(_ bytes: [UInt8]) throws(ProtobufError) {
    var reader = ProtobufReader(storage: ByteStorage(copying: bytes))
    while let tag = try reader.nextTag() {
        try reader.skipField(tag)
    }
}

private func firstError(_ bytes: [UInt8]) -> ProtobufError? {
    do {
        try skipAllFields(bytes)
        return nil
    } catch {
        return error
    }
}

@Suite struct ProtobufReaderTests {
    // MARK: Varints

    @Test(arguments: 1...10)
    func varintOfEveryLengthDecodes(length: Int) throws {
        let smallest: UInt64 = length == 1 ? 0 : 1 << UInt64(7 * (length - 1))
        let largest: UInt64 = length == 10 ? .max : (1 << UInt64(7 * length)) - 1
        for value in [smallest, largest] {
            var writer = ProtobufWriter()
            writer.varintField(1, value)
            #expect(writer.bytes.count == 1 + length)
            var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
            let tag = try #require(try reader.nextTag())
            #expect(tag == ProtobufTag(fieldNumber: 1, wireType: .varint, offset: 0))
            #expect(try reader.readVarint(tag, field: "value") == value)
            #expect(reader.isAtEnd)
        }
    }

    @Test func negativeInt64TakesTenBytes() throws {
        var writer = ProtobufWriter()
        writer.int64Field(3, -2)
        #expect(writer.bytes.count == 11)
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tag = try #require(try reader.nextTag())
        #expect(try reader.readInt64(tag, field: "value") == -2)
    }

    @Test func elevenByteVarintIsRejected() throws {
        let bytes: [UInt8] = [0x08] + [UInt8](repeating: 0x80, count: 10) + [0x00]
        var reader = ProtobufReader(storage: ByteStorage(copying: bytes))
        let tag = try #require(try reader.nextTag())
        let error = try #require(throws: ProtobufError.self) {
            try reader.readVarint(tag, field: "Test.value")
        }
        #expect(
            error
                == ProtobufError(
                    .varintTooLong, offset: 10, fieldNumber: 1, fieldName: "Test.value"))
        #expect(
            error.description
                == "invalid protobuf at byte 10 (field 1, Test.value): expected a varint of at most 10 bytes, "
                + "found a continuation bit in byte 10")
    }

    @Test func varintAbove64BitsIsRejected() throws {
        let bytes: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x02]
        let error = try #require(firstError(bytes))
        #expect(error == ProtobufError(.varintOverflow, offset: 10, fieldNumber: 1))
        #expect(
            error.description
                == "invalid protobuf at byte 10 (field 1): expected a varint that fits in 64 bits, found a 10th byte above 1"
        )
    }

    @Test func varintCutShortIsRejected() throws {
        let error = try #require(firstError([0x08, 0x80]))
        #expect(error == ProtobufError(.truncatedVarint, offset: 2, fieldNumber: 1))
        #expect(
            error.description
                == "invalid protobuf at byte 2 (field 1): expected another varint byte, found the end of the message"
        )
    }

    // MARK: Truncation

    /// One message per wire type, each a single field whose every proper prefix is invalid.
    static let singleFieldMessages: [(name: String, bytes: [UInt8])] = {
        var varint = ProtobufWriter()
        varint.varintField(100_000, .max)
        var fixed64 = ProtobufWriter()
        fixed64.fixed64Field(2, 0x0102_0304_0506_0708)
        var fixed32 = ProtobufWriter()
        fixed32.fixed32Field(3, 0x0102_0304)
        var bytes = ProtobufWriter()
        bytes.bytesField(4, [UInt8](repeating: 7, count: 300))
        return [
            ("varint", varint.bytes), ("fixed64", fixed64.bytes), ("fixed32", fixed32.bytes),
            ("bytes", bytes.bytes),
        ]
    }()

    @Test(arguments: singleFieldMessages.map(\.name))
    func truncationAtEveryLengthIsRejected(wireType: String) throws {
        let message = try #require(Self.singleFieldMessages.first { $0.name == wireType }).bytes
        #expect(firstError(message) == nil)
        for length in 1..<message.count {
            let error = try #require(
                firstError(Array(message.prefix(length))), "prefix of \(length) bytes")
            switch error.kind {
            case .truncatedVarint, .truncatedValue, .lengthPastEnd:
                break
            default:
                Issue.record("prefix of \(length) bytes: unexpected \(error)")
            }
        }
    }

    @Test func truncatedFixed32NamesWhatIsMissing() throws {
        var writer = ProtobufWriter()
        writer.fixed32Field(3, 1)
        let error = try #require(firstError(Array(writer.bytes.prefix(3))))
        #expect(
            error
                == ProtobufError(
                    .truncatedValue(needed: 4, remaining: 2), offset: 1, fieldNumber: 3))
        #expect(
            error.description
                == "invalid protobuf at byte 1 (field 3): expected 4 bytes for a fixed-width value, found 2 left in the message"
        )
    }

    @Test func lengthPastEndIsRejected() throws {
        var writer = ProtobufWriter()
        writer.tag(1, wireType: 2)
        writer.varint(100)
        writer.bytes += [1, 2, 3]
        let error = try #require(firstError(writer.bytes))
        #expect(
            error
                == ProtobufError(
                    .lengthPastEnd(length: 100, remaining: 3), offset: 1, fieldNumber: 1))
        #expect(
            error.description
                == "invalid protobuf at byte 1 (field 1): declared length 100 runs past the end of the message, which has 3 bytes left"
        )
    }

    @Test func hugeLengthIsRejectedWithoutAllocating() throws {
        var writer = ProtobufWriter()
        writer.tag(9, wireType: 2)
        writer.varint(.max)
        let error = try #require(firstError(writer.bytes))
        #expect(error.kind == .lengthPastEnd(length: .max, remaining: 0))
    }

    @Test func lengthPastEndOfNestedMessageIsRejected() throws {
        // The inner field claims 10 bytes; the file has them, but its message has only 2.
        var inner = ProtobufWriter()
        inner.tag(2, wireType: 2)
        inner.varint(10)
        inner.bytes += [0, 0]
        var outer = ProtobufWriter()
        outer.bytesField(1, inner.bytes)
        outer.bytesField(3, [UInt8](repeating: 0, count: 20))
        var reader = ProtobufReader(storage: ByteStorage(copying: outer.bytes))
        let tag = try #require(try reader.nextTag())
        let error = try #require(throws: ProtobufError.self) {
            try reader.readMessage(tag, field: "Outer.inner") { (nested) throws(ProtobufError) in
                while let field = try nested.nextTag() {
                    try nested.skipField(field)
                }
            }
        }
        #expect(
            error
                == ProtobufError(
                    .lengthPastEnd(length: 10, remaining: 2), offset: 3, fieldNumber: 2))
    }

    // MARK: Tags and wire types

    @Test(arguments: [3, 4] as [UInt8])
    func groupWireTypesAreRejected(wireType: UInt8) throws {
        var writer = ProtobufWriter()
        writer.varintField(1, 5)
        writer.tag(5, wireType: wireType)
        let error = try #require(firstError(writer.bytes))
        #expect(
            error
                == ProtobufError(
                    .groupNotSupported(wireType: Int(wireType)), offset: 2, fieldNumber: 5))
        #expect(
            error.description
                == "invalid protobuf at byte 2 (field 5): found wire type \(wireType) (group), which ONNX never uses; "
                + "expected wire type 0, 1, 2 or 5")
    }

    @Test(arguments: [6, 7] as [UInt8])
    func undefinedWireTypesAreRejected(wireType: UInt8) throws {
        var writer = ProtobufWriter()
        writer.tag(12, wireType: wireType)
        let error = try #require(firstError(writer.bytes))
        #expect(error == ProtobufError(.invalidWireType(Int(wireType)), offset: 0, fieldNumber: 12))
        #expect(
            error.description
                == "invalid protobuf at byte 0 (field 12): found undefined wire type \(wireType); expected wire type 0, 1, 2 or 5"
        )
    }

    @Test func fieldNumberZeroIsRejected() throws {
        let error = try #require(firstError([0x00, 0x01]))
        #expect(error == ProtobufError(.invalidFieldNumber(0), offset: 0))
        #expect(
            error.description
                == "invalid protobuf at byte 0: expected a field number from 1 to 536870911, found 0"
        )
    }

    @Test func tagWiderThan32BitsIsRejected() throws {
        var writer = ProtobufWriter()
        writer.varint(1 << 35)
        let error = try #require(firstError(writer.bytes))
        #expect(error.kind == .invalidFieldNumber(1 << 32))
    }

    @Test func wrongWireTypeIsRejected() throws {
        var writer = ProtobufWriter()
        writer.fixed32Field(2, 7)
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tag = try #require(try reader.nextTag())
        let error = try #require(throws: ProtobufError.self) {
            try reader.readInt64(tag, field: "TensorProto.data_type")
        }
        #expect(
            error
                == ProtobufError(
                    .unexpectedWireType(found: .fixed32, expected: "varint (wire type 0)"),
                    offset: 0, fieldNumber: 2,
                    fieldName: "TensorProto.data_type"))
        #expect(
            error.description
                == "invalid protobuf at byte 0 (field 2, TensorProto.data_type): expected varint (wire type 0), found fixed32 (wire type 5)"
        )
    }

    @Test func wrongWireTypeForRepeatedFloatIsRejected() throws {
        var writer = ProtobufWriter()
        writer.varintField(4, 1)
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tag = try #require(try reader.nextTag())
        var values: [Float] = []
        let error = try #require(throws: ProtobufError.self) {
            try reader.readRepeatedFloat(tag, field: "TensorProto.float_data", into: &values)
        }
        #expect(
            error.kind
                == .unexpectedWireType(
                    found: .varint,
                    expected: "fixed32 (wire type 5) or packed length-delimited (wire type 2)"))
    }

    // MARK: Repeated fields and unknown fields

    @Test func packedAndUnpackedInt64ReadAlike() throws {
        var packed = ProtobufWriter()
        packed.packedInt64Field(1, [2, -3, 1 << 40])
        var unpacked = ProtobufWriter()
        for value: Int64 in [2, -3, 1 << 40] {
            unpacked.int64Field(1, value)
        }
        var mixed = ProtobufWriter()
        mixed.int64Field(1, 2)
        mixed.packedInt64Field(1, [-3, 1 << 40])
        for bytes in [packed.bytes, unpacked.bytes, mixed.bytes] {
            var reader = ProtobufReader(storage: ByteStorage(copying: bytes))
            var values: [Int64] = []
            while let tag = try reader.nextTag() {
                try reader.readRepeatedInt64(tag, field: "dims", into: &values)
            }
            #expect(values == [2, -3, 1 << 40])
        }
    }

    @Test func packedAndUnpackedFloatsReadAlike() throws {
        let expected: [Float] = [1.5, -0.25, .greatestFiniteMagnitude]
        var packed = ProtobufWriter()
        packed.packedFloatField(4, expected)
        var unpacked = ProtobufWriter()
        for value in expected {
            unpacked.floatField(4, value)
        }
        for bytes in [packed.bytes, unpacked.bytes] {
            var reader = ProtobufReader(storage: ByteStorage(copying: bytes))
            var values: [Float] = []
            while let tag = try reader.nextTag() {
                try reader.readRepeatedFloat(tag, field: "float_data", into: &values)
            }
            #expect(values == expected)
        }
    }

    @Test func packedFloatsOfPartialLengthAreRejected() throws {
        var writer = ProtobufWriter()
        writer.bytesField(4, [0, 0, 0, 0, 0])
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tag = try #require(try reader.nextTag())
        var values: [Float] = []
        let error = try #require(throws: ProtobufError.self) {
            try reader.readRepeatedFloat(tag, field: "TensorProto.float_data", into: &values)
        }
        #expect(error.kind == .packedLengthMismatch(length: 5, elementSize: 4))
        #expect(
            error.description
                == "invalid protobuf at byte 1 (field 4, TensorProto.float_data): packed field of 5 bytes is not a whole number of 4-byte elements"
        )
    }

    @Test func unknownFieldsOfEveryWireTypeAreSkipped() throws {
        var writer = ProtobufWriter()
        writer.varintField(50, 1 << 60)
        writer.packedInt64Field(1, [2, 2])
        writer.fixed64Field(51, 99)
        writer.int64Field(2, 1)
        writer.bytesField(52, [1, 2, 3])
        writer.stringField(8, "weights")
        writer.fixed32Field(53, 5)
        writer.messageField(54) { $0.varintField(1, 1) }
        writer.bytesField(9, rawBytes([1, 2, 3, 4] as [Float]))
        writer.varintField(55, 0)
        var reader = ProtobufReader(storage: ByteStorage(copying: writer.bytes))
        let tensor = try ONNXTensor(decoding: &reader, externalDataDirectory: nil)
        #expect(tensor.name == "weights")
        #expect(tensor.dims == [2, 2])
        #expect(tensor.dataType == .float)
        #expect(try tensor.floatValues() == [1, 2, 3, 4])
    }

    // MARK: Nesting

    private static func nestedMessage(depth: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<depth {
            var writer = ProtobufWriter()
            writer.bytesField(1, bytes)
            bytes = writer.bytes
        }
        return bytes
    }

    private static func descend(_ reader: inout ProtobufReader) throws(ProtobufError) -> Int {
        var deepest = reader.depth
        while let tag = try reader.nextTag() {
            deepest = try reader.readMessage(tag, field: "Nested.child") {
                (child) throws(ProtobufError) in
                try descend(&child)
            }
        }
        return deepest
    }

    @Test func nestingOfOneHundredIsAccepted() throws {
        var reader = ProtobufReader(storage: ByteStorage(copying: Self.nestedMessage(depth: 100)))
        #expect(try Self.descend(&reader) == 100)
    }

    @Test func nestingDeeperThanOneHundredIsRejected() throws {
        var reader = ProtobufReader(storage: ByteStorage(copying: Self.nestedMessage(depth: 101)))
        let error = try #require(throws: ProtobufError.self) { try Self.descend(&reader) }
        #expect(error.kind == .nestingTooDeep(limit: 100))
        #expect(error.fieldNumber == 1)
        #expect(
            error.description.hasSuffix(
                "(field 1, Nested.child): messages are nested more than 100 deep"))
    }
}
