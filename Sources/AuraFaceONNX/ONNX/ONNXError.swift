/// Errors from reading an ONNX file or the values of one of its tensors.
public enum ONNXError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadableFile(path: String, reason: String)
    /// The bytes are not a well-formed protobuf `ModelProto`.
    case malformedProtobuf(path: String, ProtobufError)
    /// A tensor has a negative dimension.
    case negativeDimension(tensor: String, dims: [Int64])
    /// A tensor's element count or byte count does not fit in `Int`.
    case elementCountOverflow(tensor: String, dims: [Int64])
    /// A tensor's data type is not one the caller can use.
    case unsupportedDataType(tensor: String, found: ONNXDataType, expected: String)
    /// A tensor's data field has a different amount of data than its dims call for.
    case dataLengthMismatch(tensor: String, field: String, expected: Int, found: Int, unit: String)
    /// A tensor with elements has no data in any field.
    case missingData(tensor: String)
    /// A tensor stores its data in a way this reader does not support.
    case unsupportedStorage(tensor: String, reason: String)
    /// An `external_data` entry is missing, malformed, or points outside the model's folder.
    case invalidExternalData(tensor: String, key: String, value: String, reason: String)
    /// The file named by `external_data` does not exist or cannot be read.
    case externalDataFileUnreadable(tensor: String, file: String, reason: String)
    /// The file named by `external_data` ends before the tensor's bytes do.
    case externalDataFileTooShort(tensor: String, file: String, fileSize: Int, needed: Int)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            "cannot read '\(path)': \(reason)"
        case let .malformedProtobuf(path, error):
            "'\(path)' is not a valid ONNX file: \(error)"
        case let .negativeDimension(tensor, dims):
            "tensor '\(tensor)' has dims \(dims); expected every dimension to be 0 or more"
        case let .elementCountOverflow(tensor, dims):
            "tensor '\(tensor)' has dims \(dims), whose byte count does not fit in a 64-bit integer"
        case let .unsupportedDataType(tensor, found, expected):
            "tensor '\(tensor)' has data type \(found); expected \(expected)"
        case let .dataLengthMismatch(tensor, field, expected, found, unit):
            "tensor '\(tensor)': \(field) has \(found) \(unit), expected \(expected) for its dims"
        case let .missingData(tensor):
            "tensor '\(tensor)' has elements but no raw_data, typed data field or external data"
        case let .unsupportedStorage(tensor, reason):
            "tensor '\(tensor)': \(reason)"
        case let .invalidExternalData(tensor, key, value, reason):
            "tensor '\(tensor)': external_data \(key) '\(value)' is invalid: \(reason)"
        case let .externalDataFileUnreadable(tensor, file, reason):
            "tensor '\(tensor)': cannot read its external data file '\(file)': \(reason)"
        case let .externalDataFileTooShort(tensor, file, fileSize, needed):
            "tensor '\(tensor)': external data file '\(file)' has \(fileSize) bytes, expected at least \(needed)"
        }
    }
}
