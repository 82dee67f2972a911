import Foundation

// TensorProto from onnx.proto. Field numbers are those of onnx/onnx.proto in onnx 1.23.2.

/// A key-value pair (`StringStringEntryProto`), as used by `external_data`.
public struct ONNXStringEntry: Equatable, Sendable {
    public var key: String
    public var value: String
}

/// A serialized tensor (`TensorProto`): an initializer, a `Constant` value or an attribute.
///
/// Only the fields an IResNet export uses are decoded. `raw_data` stays in the model's
/// storage as a byte range, so decoding a model copies no weights. Read the values with
/// `floatValues()` or `int64Values()`, which check the dims against the data.
public struct ONNXTensor: Sendable {
    public var name = ""
    /// The shape as stored, unchecked: use `shape()` for validated dims.
    public var dims: [Int64] = []
    public var dataType = ONNXDataType.undefined
    public var floatData: [Float] = []
    public var int32Data: [Int32] = []
    public var int64Data: [Int64] = []
    public var doubleData: [Double] = []
    /// The range of `raw_data` in `storage`, if the field is present.
    public var rawData: Range<Int>?
    public var externalData: [ONNXStringEntry] = []
    /// `TensorProto.DataLocation`: 0 for data in this file, 1 for `external_data`.
    public var dataLocation: Int32 = 0
    /// Whether the tensor has a `segment`, which marks it as one piece of a larger tensor.
    public var hasSegment = false
    /// The bytes `rawData` points into.
    public let storage: ByteStorage
    /// The folder that `external_data` locations are relative to: the model file's folder.
    public var externalDataDirectory: URL?

    /// `TensorProto.DataLocation.EXTERNAL`.
    public static let externalDataLocation: Int32 = 1

    /// An empty tensor whose bytes fields will point into `storage`.
    public init(storage: ByteStorage, externalDataDirectory: URL? = nil) {
        self.storage = storage
        self.externalDataDirectory = externalDataDirectory
    }

    /// Decodes a `TensorProto` message.
    public init(decoding reader: inout ProtobufReader, externalDataDirectory: URL?)
        throws(ProtobufError)
    {
        self.init(storage: reader.storage, externalDataDirectory: externalDataDirectory)
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1:
                try reader.readRepeatedInt64(tag, field: "TensorProto.dims", into: &dims)
            case 2:
                dataType = ONNXDataType(
                    rawValue: try reader.readInt32(tag, field: "TensorProto.data_type"))
            case 3:
                _ = try reader.readBytes(tag, field: "TensorProto.segment")
                hasSegment = true
            case 4:
                try reader.readRepeatedFloat(tag, field: "TensorProto.float_data", into: &floatData)
            case 5:
                try reader.readRepeatedInt32(tag, field: "TensorProto.int32_data", into: &int32Data)
            case 7:
                try reader.readRepeatedInt64(tag, field: "TensorProto.int64_data", into: &int64Data)
            case 8:
                name = try reader.readString(tag, field: "TensorProto.name")
            case 9:
                rawData = try reader.readBytes(tag, field: "TensorProto.raw_data")
            case 10:
                try reader.readRepeatedDouble(
                    tag, field: "TensorProto.double_data", into: &doubleData)
            case 13:
                externalData.append(
                    try reader.readMessage(tag, field: "TensorProto.external_data") {
                        (entry) throws(ProtobufError) in
                        try Self.decodeEntry(&entry)
                    })
            case 14:
                dataLocation = try reader.readInt32(tag, field: "TensorProto.data_location")
            default:
                try reader.skipField(tag)
            }
        }
    }

    static func decodeEntry(_ reader: inout ProtobufReader) throws(ProtobufError) -> ONNXStringEntry
    {
        var entry = ONNXStringEntry(key: "", value: "")
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: entry.key = try reader.readString(tag, field: "StringStringEntryProto.key")
            case 2: entry.value = try reader.readString(tag, field: "StringStringEntryProto.value")
            default: try reader.skipField(tag)
            }
        }
        return entry
    }
}
