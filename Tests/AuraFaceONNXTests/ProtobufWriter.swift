// A minimal protobuf encoder for building test messages byte by byte.

struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func tag(_ field: Int, wireType: UInt8) {
        varint(UInt64(field) << 3 | UInt64(wireType))
    }

    mutating func varintField(_ field: Int, _ value: UInt64) {
        tag(field, wireType: 0)
        varint(value)
    }

    mutating func int64Field(_ field: Int, _ value: Int64) {
        varintField(field, UInt64(bitPattern: value))
    }

    mutating func fixed32Field(_ field: Int, _ value: UInt32) {
        tag(field, wireType: 5)
        appendLittleEndian(UInt64(value), byteCount: 4)
    }

    mutating func floatField(_ field: Int, _ value: Float) {
        fixed32Field(field, value.bitPattern)
    }

    mutating func fixed64Field(_ field: Int, _ value: UInt64) {
        tag(field, wireType: 1)
        appendLittleEndian(value, byteCount: 8)
    }

    mutating func bytesField(_ field: Int, _ value: [UInt8]) {
        tag(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func stringField(_ field: Int, _ value: String) {
        bytesField(field, Array(value.utf8))
    }

    mutating func messageField(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        build(&nested)
        bytesField(field, nested.bytes)
    }

    mutating func packedInt64Field(_ field: Int, _ values: [Int64]) {
        var packed = ProtobufWriter()
        for value in values {
            packed.varint(UInt64(bitPattern: value))
        }
        bytesField(field, packed.bytes)
    }

    mutating func packedFloatField(_ field: Int, _ values: [Float]) {
        var packed = ProtobufWriter()
        for value in values {
            packed.appendLittleEndian(UInt64(value.bitPattern), byteCount: 4)
        }
        bytesField(field, packed.bytes)
    }

    mutating func appendLittleEndian(_ value: UInt64, byteCount: Int) {
        for index in 0..<byteCount {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index)))
        }
    }
}

/// Little-endian float32 bytes, as in `raw_data`.
func rawBytes(_ values: [Float]) -> [UInt8] {
    var writer = ProtobufWriter()
    for value in values {
        writer.appendLittleEndian(UInt64(value.bitPattern), byteCount: 4)
    }
    return writer.bytes
}

/// Little-endian int64 bytes, as in `raw_data`.
func rawBytes(_ values: [Int64]) -> [UInt8] {
    var writer = ProtobufWriter()
    for value in values {
        writer.appendLittleEndian(UInt64(bitPattern: value), byteCount: 8)
    }
    return writer.bytes
}
