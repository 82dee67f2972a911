import Foundation

// ONNX messages built in Swift for tests: tensors, attributes, nodes, graphs and models,
// encoded with `ProtobufWriter` using the field numbers of onnx.proto.

struct TestTensor {
    enum Storage {
        case raw([UInt8])
        case floatData([Float])
        case doubleData([Double])
        case int32Data([Int32])
        case int64Data([Int64])
        case external([(key: String, value: String)])
        case none
    }

    var name: String
    var dims: [Int64]
    var dataType: Int32
    var storage: Storage

    static func float(_ name: String, _ dims: [Int], _ values: [Float]) -> TestTensor {
        TestTensor(
            name: name, dims: dims.map(Int64.init), dataType: 1, storage: .raw(rawBytes(values)))
    }

    static func int64(_ name: String, _ values: [Int64]) -> TestTensor {
        TestTensor(
            name: name, dims: [Int64(values.count)], dataType: 7, storage: .raw(rawBytes(values)))
    }

    func encode(into writer: inout ProtobufWriter) {
        writer.packedInt64Field(1, dims)
        writer.int64Field(2, Int64(dataType))
        writer.stringField(8, name)
        switch storage {
        case let .raw(bytes):
            writer.bytesField(9, bytes)
        case let .floatData(values):
            writer.packedFloatField(4, values)
        case let .doubleData(values):
            var packed = ProtobufWriter()
            for value in values {
                packed.appendLittleEndian(value.bitPattern, byteCount: 8)
            }
            writer.bytesField(10, packed.bytes)
        case let .int32Data(values):
            writer.packedInt64Field(5, values.map(Int64.init))
        case let .int64Data(values):
            writer.packedInt64Field(7, values)
        case let .external(entries):
            for entry in entries {
                writer.messageField(13) { message in
                    message.stringField(1, entry.key)
                    message.stringField(2, entry.value)
                }
            }
            writer.int64Field(14, 1)
        case .none:
            break
        }
    }

    var encoded: [UInt8] {
        var writer = ProtobufWriter()
        encode(into: &writer)
        return writer.bytes
    }
}

enum TestAttribute {
    case int(String, Int64)
    case ints(String, [Int64])
    case float(String, Float)
    case string(String, String)
    case tensor(String, TestTensor)

    var name: String {
        switch self {
        case let .int(name, _), let .ints(name, _), let .float(name, _), let .string(name, _),
            let .tensor(name, _):
            name
        }
    }

    func encode(into writer: inout ProtobufWriter) {
        writer.stringField(1, name)
        switch self {
        case let .int(_, value):
            writer.int64Field(20, 2)
            writer.int64Field(3, value)
        case let .ints(_, values):
            writer.int64Field(20, 7)
            for value in values {
                writer.int64Field(8, value)
            }
        case let .float(_, value):
            writer.int64Field(20, 1)
            writer.floatField(2, value)
        case let .string(_, value):
            writer.int64Field(20, 3)
            writer.stringField(4, value)
        case let .tensor(_, tensor):
            writer.int64Field(20, 4)
            writer.messageField(5) { tensor.encode(into: &$0) }
        }
    }
}

struct TestNode {
    var op: String
    var name: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [TestAttribute] = []
    var domain = ""

    var output: String { outputs[0] }

    mutating func setAttribute(_ attribute: TestAttribute) {
        attributes.removeAll { $0.name == attribute.name }
        attributes.append(attribute)
    }

    func encode(into writer: inout ProtobufWriter) {
        for input in inputs {
            writer.stringField(1, input)
        }
        for output in outputs {
            writer.stringField(2, output)
        }
        if !name.isEmpty {
            writer.stringField(3, name)
        }
        writer.stringField(4, op)
        if !domain.isEmpty {
            writer.stringField(7, domain)
        }
        for attribute in attributes {
            writer.messageField(5) { attribute.encode(into: &$0) }
        }
    }
}

enum TestDimension {
    case value(Int)
    case parameter(String)
}

struct TestValueInfo {
    var name: String
    var elementType: Int32 = 1
    var dims: [TestDimension]?

    func encode(into writer: inout ProtobufWriter) {
        writer.stringField(1, name)
        writer.messageField(2) { type in
            type.messageField(1) { tensorType in
                tensorType.int64Field(1, Int64(elementType))
                if let dims {
                    tensorType.messageField(2) { shape in
                        for dim in dims {
                            shape.messageField(1) { dimension in
                                switch dim {
                                case let .value(value): dimension.int64Field(1, Int64(value))
                                case let .parameter(name): dimension.stringField(2, name)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

struct TestGraph {
    var nodes: [TestNode] = []
    var initializers: [TestTensor] = []
    var inputs: [TestValueInfo] = []
    var outputs: [TestValueInfo] = []
    var opset: Int64? = 11
    var irVersion: Int64 = 6

    var encoded: [UInt8] {
        var model = ProtobufWriter()
        model.int64Field(1, irVersion)
        model.stringField(2, "swift-tests")
        if let opset {
            model.messageField(8) { entry in
                entry.stringField(1, "")
                entry.int64Field(2, opset)
            }
        }
        model.messageField(7) { graph in
            for node in nodes {
                graph.messageField(1) { node.encode(into: &$0) }
            }
            graph.stringField(2, "test")
            for tensor in initializers {
                graph.messageField(5) { tensor.encode(into: &$0) }
            }
            for input in inputs {
                graph.messageField(11) { input.encode(into: &$0) }
            }
            for output in outputs {
                graph.messageField(12) { output.encode(into: &$0) }
            }
        }
        return model.bytes
    }

    /// Position of the node labelled `label` by `TinyIResNet`, such as `layer2.0.prelu`.
    func index(of label: String, in labels: [String: Int]) -> Int {
        guard let index = labels[label] else {
            preconditionFailure("no node labelled \(label)")
        }
        return index
    }
}
