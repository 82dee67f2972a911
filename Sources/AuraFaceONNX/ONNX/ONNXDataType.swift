/// An element type from `TensorProto.DataType` in onnx.proto.
///
/// Kept as the raw number so that a file with a type this reader does not know still
/// decodes and can be reported by number.
public struct ONNXDataType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public static let undefined = ONNXDataType(rawValue: 0)
    public static let float = ONNXDataType(rawValue: 1)
    public static let uint8 = ONNXDataType(rawValue: 2)
    public static let int8 = ONNXDataType(rawValue: 3)
    public static let uint16 = ONNXDataType(rawValue: 4)
    public static let int16 = ONNXDataType(rawValue: 5)
    public static let int32 = ONNXDataType(rawValue: 6)
    public static let int64 = ONNXDataType(rawValue: 7)
    public static let string = ONNXDataType(rawValue: 8)
    public static let bool = ONNXDataType(rawValue: 9)
    public static let float16 = ONNXDataType(rawValue: 10)
    public static let double = ONNXDataType(rawValue: 11)
    public static let uint32 = ONNXDataType(rawValue: 12)
    public static let uint64 = ONNXDataType(rawValue: 13)
    public static let bfloat16 = ONNXDataType(rawValue: 16)

    /// The size of one element in `raw_data`, for the types whose size is a whole number of bytes.
    public var elementSize: Int? {
        switch rawValue {
        case 1, 6, 12: 4
        case 2, 3, 9: 1
        case 4, 5, 10, 16: 2
        case 7, 11, 13: 8
        default: nil
        }
    }

    /// The name used in onnx.proto, such as `FLOAT`.
    public var description: String {
        let names = [
            "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
            "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
        ]
        if rawValue >= 0 && Int(rawValue) < names.count {
            return names[Int(rawValue)]
        }
        return "data type \(rawValue)"
    }
}
