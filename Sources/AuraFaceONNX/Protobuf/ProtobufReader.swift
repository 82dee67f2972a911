// A decoder for the protobuf wire format (https://protobuf.dev/programming-guides/encoding/):
// tags, varints, fixed32, fixed64 and length-delimited fields, packed or unpacked
// repeated scalars. It reads in place and returns byte ranges for bytes fields, so
// large tensors are not copied while a model is decoded.

/// A field's tag: its number, its wire type and where it starts.
public struct ProtobufTag: Equatable, Sendable {
    public var fieldNumber: Int
    public var wireType: ProtobufWireType
    /// The offset of the tag's first byte in the storage.
    public var offset: Int

    public init(fieldNumber: Int, wireType: ProtobufWireType, offset: Int) {
        self.fieldNumber = fieldNumber
        self.wireType = wireType
        self.offset = offset
    }
}

/// Reads the fields of one protobuf message from a `ByteStorage`.
///
/// Typical use loops over `nextTag()`, reads the fields it handles with the `read…`
/// methods and passes the rest to `skipField(_:)`. Every length is checked against the
/// bytes left in the enclosing message before anything is read or allocated.
public struct ProtobufReader {
    /// The deepest nesting `readMessage` accepts: a top-level message is depth 0, and a
    /// message inside it depth 1. Deeper input is rejected instead of recursing without end.
    public static let maxNestingDepth = 100

    public let storage: ByteStorage
    /// The offset of the next unread byte.
    public private(set) var offset: Int
    /// The offset one past the message's last byte.
    public let endOffset: Int
    /// How many messages enclose this one.
    public let depth: Int

    /// Creates a reader for the message that fills all of `storage`.
    public init(storage: ByteStorage) {
        self.storage = storage
        self.offset = 0
        self.endOffset = storage.count
        self.depth = 0
    }

    private init(storage: ByteStorage, range: Range<Int>, depth: Int) {
        self.storage = storage
        self.offset = range.lowerBound
        self.endOffset = range.upperBound
        self.depth = depth
    }

    public var isAtEnd: Bool { offset >= endOffset }

    /// The number of unread bytes in the message.
    public var remainingCount: Int { endOffset - offset }

    // MARK: Tags

    /// Reads the next tag, or returns nil at the end of the message.
    ///
    /// - Throws: `ProtobufError` for a malformed varint, a field number outside 1...2^29-1,
    ///   a group wire type (3 or 4), or an undefined wire type (6 or 7).
    public mutating func nextTag() throws(ProtobufError) -> ProtobufTag? {
        guard !isAtEnd else { return nil }
        let start = offset
        let key = try decodeVarint(fieldNumber: nil, fieldName: nil)
        let number = key >> 3
        guard key <= UInt64(UInt32.max), number >= 1 else {
            throw ProtobufError(.invalidFieldNumber(number), offset: start)
        }
        let rawWireType = Int(key & 7)
        guard let wireType = ProtobufWireType(rawValue: UInt8(rawWireType)) else {
            if rawWireType == 3 || rawWireType == 4 {
                throw ProtobufError(
                    .groupNotSupported(wireType: rawWireType), offset: start,
                    fieldNumber: Int(number))
            }
            throw ProtobufError(
                .invalidWireType(rawWireType), offset: start, fieldNumber: Int(number))
        }
        return ProtobufTag(fieldNumber: Int(number), wireType: wireType, offset: start)
    }

    /// Skips the value of a field the caller does not read.
    public mutating func skipField(_ tag: ProtobufTag) throws(ProtobufError) {
        switch tag.wireType {
        case .varint:
            _ = try decodeVarint(fieldNumber: tag.fieldNumber, fieldName: nil)
        case .fixed64:
            _ = try advance(by: 8, tag: tag, fieldName: nil)
        case .fixed32:
            _ = try advance(by: 4, tag: tag, fieldName: nil)
        case .lengthDelimited:
            _ = try decodeLengthDelimited(tag: tag, fieldName: nil)
        }
    }

    // MARK: Singular values

    /// Reads a varint field as its raw 64 bits.
    public mutating func readVarint(_ tag: ProtobufTag, field: String) throws(ProtobufError)
        -> UInt64
    {
        try expect(tag, .varint, field: field)
        return try decodeVarint(fieldNumber: tag.fieldNumber, fieldName: field)
    }

    /// Reads an `int64` field.
    public mutating func readInt64(_ tag: ProtobufTag, field: String) throws(ProtobufError) -> Int64
    {
        Int64(bitPattern: try readVarint(tag, field: field))
    }

    /// Reads an `int32` or enum field. Encoders sign-extend negative values to 64 bits, and
    /// protobuf parsers keep the low 32 bits, as this does.
    public mutating func readInt32(_ tag: ProtobufTag, field: String) throws(ProtobufError) -> Int32
    {
        Int32(truncatingIfNeeded: try readVarint(tag, field: field))
    }

    /// Reads a `float` field (fixed32, little-endian IEEE 754).
    public mutating func readFloat(_ tag: ProtobufTag, field: String) throws(ProtobufError) -> Float
    {
        try expect(tag, .fixed32, field: field)
        let start = try advance(by: 4, tag: tag, fieldName: field)
        return Float(bitPattern: loadUInt32(at: start))
    }

    /// Reads a `double` field (fixed64, little-endian IEEE 754).
    public mutating func readDouble(_ tag: ProtobufTag, field: String) throws(ProtobufError)
        -> Double
    {
        try expect(tag, .fixed64, field: field)
        let start = try advance(by: 8, tag: tag, fieldName: field)
        return Double(bitPattern: loadUInt64(at: start))
    }

    /// Reads a `bytes` field and returns its range in `storage` without copying it.
    public mutating func readBytes(_ tag: ProtobufTag, field: String) throws(ProtobufError)
        -> Range<Int>
    {
        try expect(tag, .lengthDelimited, field: field)
        return try decodeLengthDelimited(tag: tag, fieldName: field)
    }

    /// Reads a `string` field, replacing invalid UTF-8 with U+FFFD.
    public mutating func readString(_ tag: ProtobufTag, field: String) throws(ProtobufError)
        -> String
    {
        storage.string(try readBytes(tag, field: field))
    }

    /// Reads an embedded message by handing a reader limited to its bytes to `decode`.
    ///
    /// - Throws: `ProtobufError.Kind.nestingTooDeep` when the embedded message would be
    ///   deeper than `maxNestingDepth`, and whatever `decode` throws.
    public mutating func readMessage<Message>(
        _ tag: ProtobufTag, field: String,
        _ decode: (inout ProtobufReader) throws(ProtobufError) -> Message
    ) throws(ProtobufError) -> Message {
        let range = try readBytes(tag, field: field)
        guard depth < Self.maxNestingDepth else {
            throw ProtobufError(
                .nestingTooDeep(limit: Self.maxNestingDepth), offset: tag.offset,
                fieldNumber: tag.fieldNumber, fieldName: field)
        }
        var nested = ProtobufReader(storage: storage, range: range, depth: depth + 1)
        return try decode(&nested)
    }

    // MARK: Repeated scalars, packed or not

    /// Appends one element, or a packed run of elements, of a repeated `int64` field.
    public mutating func readRepeatedInt64(
        _ tag: ProtobufTag, field: String, into values: inout [Int64]
    ) throws(ProtobufError) {
        try readRepeatedVarints(tag, field: field) { values.append(Int64(bitPattern: $0)) }
    }

    /// Appends one element, or a packed run of elements, of a repeated `int32` field.
    public mutating func readRepeatedInt32(
        _ tag: ProtobufTag, field: String, into values: inout [Int32]
    ) throws(ProtobufError) {
        try readRepeatedVarints(tag, field: field) { values.append(Int32(truncatingIfNeeded: $0)) }
    }

    /// Appends one element, or a packed run of elements, of a repeated `float` field.
    public mutating func readRepeatedFloat(
        _ tag: ProtobufTag, field: String, into values: inout [Float]
    ) throws(ProtobufError) {
        switch tag.wireType {
        case .fixed32:
            values.append(try readFloat(tag, field: field))
        case .lengthDelimited:
            let range = try decodePacked(tag: tag, field: field, elementSize: 4)
            values.reserveCapacity(values.count + range.count / 4)
            for start in stride(from: range.lowerBound, to: range.upperBound, by: 4) {
                values.append(Float(bitPattern: loadUInt32(at: start)))
            }
        default:
            throw wrongWireType(
                tag, field: field,
                expected: "fixed32 (wire type 5) or packed length-delimited (wire type 2)")
        }
    }

    /// Appends one element, or a packed run of elements, of a repeated `double` field.
    public mutating func readRepeatedDouble(
        _ tag: ProtobufTag, field: String, into values: inout [Double]
    ) throws(ProtobufError) {
        switch tag.wireType {
        case .fixed64:
            values.append(try readDouble(tag, field: field))
        case .lengthDelimited:
            let range = try decodePacked(tag: tag, field: field, elementSize: 8)
            values.reserveCapacity(values.count + range.count / 8)
            for start in stride(from: range.lowerBound, to: range.upperBound, by: 8) {
                values.append(Double(bitPattern: loadUInt64(at: start)))
            }
        default:
            throw wrongWireType(
                tag, field: field,
                expected: "fixed64 (wire type 1) or packed length-delimited (wire type 2)")
        }
    }

    private mutating func readRepeatedVarints(
        _ tag: ProtobufTag, field: String, _ append: (UInt64) -> Void
    ) throws(ProtobufError) {
        switch tag.wireType {
        case .varint:
            append(try decodeVarint(fieldNumber: tag.fieldNumber, fieldName: field))
        case .lengthDelimited:
            let range = try decodeLengthDelimited(tag: tag, fieldName: field)
            var packed = ProtobufReader(storage: storage, range: range, depth: depth)
            while !packed.isAtEnd {
                append(try packed.decodeVarint(fieldNumber: tag.fieldNumber, fieldName: field))
            }
        default:
            throw wrongWireType(
                tag, field: field,
                expected: "varint (wire type 0) or packed length-delimited (wire type 2)")
        }
    }

    // MARK: Wire-level decoding

    private func expect(_ tag: ProtobufTag, _ wireType: ProtobufWireType, field: String)
        throws(ProtobufError)
    {
        guard tag.wireType == wireType else {
            throw wrongWireType(tag, field: field, expected: wireType.description)
        }
    }

    private func wrongWireType(_ tag: ProtobufTag, field: String, expected: String) -> ProtobufError
    {
        ProtobufError(
            .unexpectedWireType(found: tag.wireType, expected: expected), offset: tag.offset,
            fieldNumber: tag.fieldNumber, fieldName: field)
    }

    private mutating func decodeVarint(fieldNumber: Int?, fieldName: String?) throws(ProtobufError)
        -> UInt64
    {
        var value: UInt64 = 0
        for index in 0..<10 {
            guard offset < endOffset else {
                throw ProtobufError(
                    .truncatedVarint, offset: offset, fieldNumber: fieldNumber, fieldName: fieldName
                )
            }
            let byte = storage.bytes[offset]
            if index == 9 {
                // The 10th byte carries only bit 63: a continuation bit means an 11th byte,
                // and any other bit would not fit in 64.
                if byte & 0x80 != 0 {
                    throw ProtobufError(
                        .varintTooLong, offset: offset, fieldNumber: fieldNumber,
                        fieldName: fieldName)
                }
                if byte > 1 {
                    throw ProtobufError(
                        .varintOverflow, offset: offset, fieldNumber: fieldNumber,
                        fieldName: fieldName)
                }
            }
            offset += 1
            value |= UInt64(byte & 0x7F) << UInt64(7 * index)
            if byte & 0x80 == 0 {
                return value
            }
        }
        preconditionFailure("the loop returns or throws by the 10th byte")
    }

    /// Reads a length prefix and returns the range it covers, after checking that the
    /// range ends inside the message.
    private mutating func decodeLengthDelimited(tag: ProtobufTag, fieldName: String?)
        throws(ProtobufError) -> Range<Int>
    {
        let lengthOffset = offset
        let length = try decodeVarint(fieldNumber: tag.fieldNumber, fieldName: fieldName)
        guard length <= UInt64(remainingCount) else {
            throw ProtobufError(
                .lengthPastEnd(length: length, remaining: remainingCount), offset: lengthOffset,
                fieldNumber: tag.fieldNumber, fieldName: fieldName)
        }
        let range = offset..<(offset + Int(length))
        offset = range.upperBound
        return range
    }

    private mutating func decodePacked(tag: ProtobufTag, field: String, elementSize: Int)
        throws(ProtobufError) -> Range<Int>
    {
        let start = offset
        let range = try decodeLengthDelimited(tag: tag, fieldName: field)
        guard range.count % elementSize == 0 else {
            throw ProtobufError(
                .packedLengthMismatch(length: range.count, elementSize: elementSize), offset: start,
                fieldNumber: tag.fieldNumber, fieldName: field)
        }
        return range
    }

    /// Moves past `count` bytes and returns where they start.
    private mutating func advance(by count: Int, tag: ProtobufTag, fieldName: String?)
        throws(ProtobufError) -> Int
    {
        guard count <= remainingCount else {
            throw ProtobufError(
                .truncatedValue(needed: count, remaining: remainingCount), offset: offset,
                fieldNumber: tag.fieldNumber, fieldName: fieldName)
        }
        let start = offset
        offset += count
        return start
    }

    private func loadUInt32(at start: Int) -> UInt32 {
        UInt32(littleEndian: storage.bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self))
    }

    private func loadUInt64(at start: Int) -> UInt64 {
        UInt64(littleEndian: storage.bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))
    }
}
