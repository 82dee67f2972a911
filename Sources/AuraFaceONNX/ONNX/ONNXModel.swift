import Foundation

// The parts of onnx.proto an IResNet export uses: ModelProto, OperatorSetIdProto,
// GraphProto, NodeProto, AttributeProto and ValueInfoProto with its tensor type.
// Field numbers are those of onnx/onnx.proto in onnx 1.23.2. Fields not listed here
// (doc strings, metadata, functions, training info, sub-graphs) are skipped.

/// An operator set a model imports (`OperatorSetIdProto`).
public struct ONNXOperatorSetID: Equatable, Sendable {
    /// The operator domain: "" or "ai.onnx" for the standard operators.
    public var domain = ""
    public var version: Int64 = 0

    public init(domain: String = "", version: Int64 = 0) {
        self.domain = domain
        self.version = version
    }

    init(decoding reader: inout ProtobufReader) throws(ProtobufError) {
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: domain = try reader.readString(tag, field: "OperatorSetIdProto.domain")
            case 2: version = try reader.readInt64(tag, field: "OperatorSetIdProto.version")
            default: try reader.skipField(tag)
            }
        }
    }
}

/// One dimension of a value's declared shape (`TensorShapeProto.Dimension`).
public enum ONNXDimension: Equatable, Sendable {
    case value(Int64)
    /// A symbolic dimension such as `batch`.
    case parameter(String)
    /// Neither `dim_value` nor `dim_param` is set.
    case unknown
}

/// A graph input, output or intermediate value with its declared type (`ValueInfoProto`).
public struct ONNXValueInfo: Sendable {
    public var name = ""
    /// The element type, when the value is declared as a tensor.
    public var elementType: ONNXDataType?
    /// The declared shape, or nil when the type has none.
    public var shape: [ONNXDimension]?

    public init(name: String = "", elementType: ONNXDataType? = nil, shape: [ONNXDimension]? = nil)
    {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    init(decoding reader: inout ProtobufReader) throws(ProtobufError) {
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1:
                name = try reader.readString(tag, field: "ValueInfoProto.name")
            case 2:
                try reader.readMessage(tag, field: "ValueInfoProto.type") {
                    (type) throws(ProtobufError) in
                    try decodeType(&type)
                }
            default:
                try reader.skipField(tag)
            }
        }
    }

    /// Reads `TypeProto`, keeping only `tensor_type` (field 1).
    private mutating func decodeType(_ reader: inout ProtobufReader) throws(ProtobufError) {
        while let tag = try reader.nextTag() {
            guard tag.fieldNumber == 1 else {
                try reader.skipField(tag)
                continue
            }
            try reader.readMessage(tag, field: "TypeProto.tensor_type") {
                (tensorType) throws(ProtobufError) in
                while let field = try tensorType.nextTag() {
                    switch field.fieldNumber {
                    case 1:
                        elementType = ONNXDataType(
                            rawValue: try tensorType.readInt32(
                                field, field: "TypeProto.Tensor.elem_type"))
                    case 2:
                        shape = try tensorType.readMessage(field, field: "TypeProto.Tensor.shape") {
                            (shape) throws(ProtobufError) in
                            try Self.decodeShape(&shape)
                        }
                    default:
                        try tensorType.skipField(field)
                    }
                }
            }
        }
    }

    private static func decodeShape(_ reader: inout ProtobufReader) throws(ProtobufError)
        -> [ONNXDimension]
    {
        var dims: [ONNXDimension] = []
        while let tag = try reader.nextTag() {
            guard tag.fieldNumber == 1 else {
                try reader.skipField(tag)
                continue
            }
            let dim = try reader.readMessage(tag, field: "TensorShapeProto.dim") {
                (dim) throws(ProtobufError) in
                var result = ONNXDimension.unknown
                while let field = try dim.nextTag() {
                    switch field.fieldNumber {
                    case 1: result = .value(try dim.readInt64(field, field: "Dimension.dim_value"))
                    case 2:
                        result = .parameter(try dim.readString(field, field: "Dimension.dim_param"))
                    default: try dim.skipField(field)
                    }
                }
                return result
            }
            dims.append(dim)
        }
        return dims
    }
}

/// A node attribute (`AttributeProto`). Only the value field named by `type` is meaningful.
public struct ONNXAttribute: Sendable {
    /// `AttributeProto.AttributeType`.
    public enum Kind: Int32, Sendable {
        case undefined = 0, float = 1, int = 2, string = 3, tensor = 4, graph = 5
        case floats = 6, ints = 7, strings = 8, tensors = 9, graphs = 10
        case sparseTensor = 11, sparseTensors = 12, typeProto = 13, typeProtos = 14
    }

    public var name = ""
    /// The raw `type` field; see `kind`.
    public var type: Int32 = 0
    public var f: Float?
    public var i: Int64?
    public var s: [UInt8]?
    public var t: ONNXTensor?
    public var floats: [Float] = []
    public var ints: [Int64] = []
    public var strings: [[UInt8]] = []
    public var tensors: [ONNXTensor] = []

    public var kind: Kind? { Kind(rawValue: type) }

    /// `s` decoded as UTF-8.
    public var string: String? {
        s.map { String(decoding: $0, as: UTF8.self) }
    }

    public init(name: String) {
        self.name = name
    }

    init(decoding reader: inout ProtobufReader, externalDataDirectory: URL?) throws(ProtobufError) {
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1:
                name = try reader.readString(tag, field: "AttributeProto.name")
            case 20:
                type = try reader.readInt32(tag, field: "AttributeProto.type")
            case 2:
                f = try reader.readFloat(tag, field: "AttributeProto.f")
            case 3:
                i = try reader.readInt64(tag, field: "AttributeProto.i")
            case 4:
                s = Array(
                    reader.storage.slice(try reader.readBytes(tag, field: "AttributeProto.s")))
            case 5:
                t = try reader.readMessage(tag, field: "AttributeProto.t") {
                    (tensor) throws(ProtobufError) in
                    try ONNXTensor(decoding: &tensor, externalDataDirectory: externalDataDirectory)
                }
            case 7:
                try reader.readRepeatedFloat(tag, field: "AttributeProto.floats", into: &floats)
            case 8:
                try reader.readRepeatedInt64(tag, field: "AttributeProto.ints", into: &ints)
            case 9:
                strings.append(
                    Array(
                        reader.storage.slice(
                            try reader.readBytes(tag, field: "AttributeProto.strings"))))
            case 10:
                tensors.append(
                    try reader.readMessage(tag, field: "AttributeProto.tensors") {
                        (tensor) throws(ProtobufError) in
                        try ONNXTensor(
                            decoding: &tensor, externalDataDirectory: externalDataDirectory)
                    })
            default:
                try reader.skipField(tag)
            }
        }
    }
}

/// One operator call in a graph (`NodeProto`).
public struct ONNXNode: Sendable {
    /// Input value names. An empty name marks an omitted optional input.
    public var inputs: [String] = []
    public var outputs: [String] = []
    public var name = ""
    public var opType = ""
    /// The operator domain: "" or "ai.onnx" for the standard operators.
    public var domain = ""
    public var attributes: [ONNXAttribute] = []

    public init(opType: String, name: String = "", inputs: [String] = [], outputs: [String] = []) {
        self.opType = opType
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
    }

    /// Returns the attribute called `name`, if the node has one.
    public func attribute(_ name: String) -> ONNXAttribute? {
        attributes.first { $0.name == name }
    }

    init(decoding reader: inout ProtobufReader, externalDataDirectory: URL?) throws(ProtobufError) {
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1:
                inputs.append(try reader.readString(tag, field: "NodeProto.input"))
            case 2:
                outputs.append(try reader.readString(tag, field: "NodeProto.output"))
            case 3:
                name = try reader.readString(tag, field: "NodeProto.name")
            case 4:
                opType = try reader.readString(tag, field: "NodeProto.op_type")
            case 7:
                domain = try reader.readString(tag, field: "NodeProto.domain")
            case 5:
                attributes.append(
                    try reader.readMessage(tag, field: "NodeProto.attribute") {
                        (attribute) throws(ProtobufError) in
                        try ONNXAttribute(
                            decoding: &attribute, externalDataDirectory: externalDataDirectory)
                    })
            default:
                try reader.skipField(tag)
            }
        }
    }
}

/// A computation graph (`GraphProto`): nodes in topological order, initializers and the
/// declared inputs and outputs.
public struct ONNXGraph: Sendable {
    public var nodes: [ONNXNode] = []
    public var name = ""
    public var initializers: [ONNXTensor] = []
    /// Declared inputs. Exporters may list initializers here too.
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []
    public var valueInfo: [ONNXValueInfo] = []

    public init() {}

    init(decoding reader: inout ProtobufReader, externalDataDirectory: URL?) throws(ProtobufError) {
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1:
                nodes.append(
                    try reader.readMessage(tag, field: "GraphProto.node") {
                        (node) throws(ProtobufError) in
                        try ONNXNode(decoding: &node, externalDataDirectory: externalDataDirectory)
                    })
            case 2:
                name = try reader.readString(tag, field: "GraphProto.name")
            case 5:
                initializers.append(
                    try reader.readMessage(tag, field: "GraphProto.initializer") {
                        (tensor) throws(ProtobufError) in
                        try ONNXTensor(
                            decoding: &tensor, externalDataDirectory: externalDataDirectory)
                    })
            case 11, 12, 13:
                let field = ["GraphProto.input", "GraphProto.output", "GraphProto.value_info"][
                    tag.fieldNumber - 11]
                let info = try reader.readMessage(tag, field: field) {
                    (info) throws(ProtobufError) in
                    try ONNXValueInfo(decoding: &info)
                }
                switch tag.fieldNumber {
                case 11: inputs.append(info)
                case 12: outputs.append(info)
                default: valueInfo.append(info)
                }
            default:
                try reader.skipField(tag)
            }
        }
    }
}

/// A decoded ONNX model (`ModelProto`).
///
/// Tensors keep byte ranges into `storage`. Each `ONNXTensor` keeps a reference to the
/// storage, so the bytes stay in memory for as long as any tensor lives.
public struct ONNXModel: Sendable {
    public var irVersion: Int64 = 0
    public var opsetImports: [ONNXOperatorSetID] = []
    public var producerName = ""
    public var producerVersion = ""
    public var graph = ONNXGraph()
    /// The file's bytes.
    public let storage: ByteStorage

    /// Reads the ONNX file at `url` into memory and decodes it. External data is looked up
    /// next to it.
    ///
    /// The file is read, not memory-mapped, so truncating or replacing it afterwards does not
    /// affect this model.
    ///
    /// - Throws: `ONNXError.unreadableFile` (also for an empty file) or
    ///   `ONNXError.malformedProtobuf`.
    public init(contentsOf url: URL) throws(ONNXError) {
        let storage: ByteStorage
        do {
            storage = try ByteStorage(readingFileAt: url)
        } catch {
            throw .unreadableFile(path: error.path, reason: error.reason)
        }
        // An empty file decodes as a valid, empty ModelProto, so it is reported as empty here
        // instead of by the missing opset or graph that follows from it.
        guard storage.count > 0 else {
            throw .unreadableFile(path: url.path, reason: "the file is empty (0 bytes); expected an ONNX model")
        }
        try self.init(
            storage: storage, externalDataDirectory: url.deletingLastPathComponent(), path: url.path
        )
    }

    /// Decodes a model from `storage`.
    ///
    /// - Parameters:
    ///   - externalDataDirectory: the folder `external_data` locations are relative to, or
    ///     nil to reject external data.
    ///   - path: the name to put in error messages.
    public init(storage: ByteStorage, externalDataDirectory: URL?, path: String) throws(ONNXError) {
        self.storage = storage
        var reader = ProtobufReader(storage: storage)
        do {
            while let tag = try reader.nextTag() {
                switch tag.fieldNumber {
                case 1:
                    irVersion = try reader.readInt64(tag, field: "ModelProto.ir_version")
                case 2:
                    producerName = try reader.readString(tag, field: "ModelProto.producer_name")
                case 3:
                    producerVersion = try reader.readString(
                        tag, field: "ModelProto.producer_version")
                case 7:
                    graph = try reader.readMessage(tag, field: "ModelProto.graph") {
                        (graph) throws(ProtobufError) in
                        try ONNXGraph(
                            decoding: &graph, externalDataDirectory: externalDataDirectory)
                    }
                case 8:
                    opsetImports.append(
                        try reader.readMessage(tag, field: "ModelProto.opset_import") {
                            (opset) throws(ProtobufError) in
                            try ONNXOperatorSetID(decoding: &opset)
                        })
                default:
                    try reader.skipField(tag)
                }
            }
        } catch {
            throw .malformedProtobuf(path: path, error)
        }
    }

    /// The version of the standard operator set ("" or "ai.onnx" domain), if imported.
    public var standardOpsetVersion: Int64? {
        opsetImports.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version
    }
}
