/// The protobuf wire types this decoder reads.
///
/// Wire types 3 and 4 (start and end group) are deprecated, and no ONNX message uses
/// them, so the reader rejects them. 6 and 7 are not defined.
public enum ProtobufWireType: UInt8, Sendable, CustomStringConvertible {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5

    public var description: String {
        switch self {
        case .varint: "varint (wire type 0)"
        case .fixed64: "fixed64 (wire type 1)"
        case .lengthDelimited: "length-delimited (wire type 2)"
        case .fixed32: "fixed32 (wire type 5)"
        }
    }
}

/// Malformed protobuf bytes, with where they were found.
public struct ProtobufError: Error, Equatable, CustomStringConvertible {
    /// The defect found in the bytes.
    public enum Kind: Equatable, Sendable {
        /// The message ends inside a varint.
        case truncatedVarint
        /// A varint continues past 10 bytes, the most a 64-bit value needs.
        case varintTooLong
        /// A 10-byte varint carries more than 64 bits.
        case varintOverflow
        /// A fixed-width value needs more bytes than the message has left.
        case truncatedValue(needed: Int, remaining: Int)
        /// A length-delimited field declares more bytes than the message has left.
        case lengthPastEnd(length: UInt64, remaining: Int)
        /// A tag with field number 0 or above 2^29 - 1, or a tag wider than 32 bits.
        case invalidFieldNumber(UInt64)
        /// A tag with wire type 3 or 4 (groups).
        case groupNotSupported(wireType: Int)
        /// A tag with wire type 6 or 7.
        case invalidWireType(Int)
        /// A known field arrived with a wire type its declared type cannot have.
        case unexpectedWireType(found: ProtobufWireType, expected: String)
        /// A packed field's length is not a multiple of its element size.
        case packedLengthMismatch(length: Int, elementSize: Int)
        /// Messages are nested deeper than `ProtobufReader.maxNestingDepth`.
        case nestingTooDeep(limit: Int)
    }

    public var kind: Kind
    /// The offset of the offending byte from the start of the storage.
    public var offset: Int
    /// The field being read, when the error is inside a field.
    public var fieldNumber: Int?
    /// The field's name in its message, such as `TensorProto.raw_data`, when the decoder passed one.
    public var fieldName: String?

    public init(_ kind: Kind, offset: Int, fieldNumber: Int? = nil, fieldName: String? = nil) {
        self.kind = kind
        self.offset = offset
        self.fieldNumber = fieldNumber
        self.fieldName = fieldName
    }

    public var description: String {
        var location = "invalid protobuf at byte \(offset)"
        switch (fieldNumber, fieldName) {
        case let (number?, name?):
            location += " (field \(number), \(name))"
        case let (number?, nil):
            location += " (field \(number))"
        case let (nil, name?):
            location += " (\(name))"
        case (nil, nil):
            break
        }
        return location + ": " + explanation
    }

    private var explanation: String {
        switch kind {
        case .truncatedVarint:
            "expected another varint byte, found the end of the message"
        case .varintTooLong:
            "expected a varint of at most 10 bytes, found a continuation bit in byte 10"
        case .varintOverflow:
            "expected a varint that fits in 64 bits, found a 10th byte above 1"
        case let .truncatedValue(needed, remaining):
            "expected \(needed) bytes for a fixed-width value, found \(remaining) left in the message"
        case let .lengthPastEnd(length, remaining):
            "declared length \(length) runs past the end of the message, which has \(remaining) bytes left"
        case let .invalidFieldNumber(number):
            "expected a field number from 1 to 536870911, found \(number)"
        case let .groupNotSupported(wireType):
            "found wire type \(wireType) (group), which ONNX never uses; expected wire type 0, 1, 2 or 5"
        case let .invalidWireType(wireType):
            "found undefined wire type \(wireType); expected wire type 0, 1, 2 or 5"
        case let .unexpectedWireType(found, expected):
            "expected \(expected), found \(found)"
        case let .packedLengthMismatch(length, elementSize):
            "packed field of \(length) bytes is not a whole number of \(elementSize)-byte elements"
        case let .nestingTooDeep(limit):
            "messages are nested more than \(limit) deep"
        }
    }
}
