// The graph prepared for the structural walk: Identity and Dropout nodes removed by
// renaming their outputs to their inputs, Constant nodes turned into constants, and an
// index from each value to the nodes that read it.

/// A node of the graph that the walk visits.
struct GraphNode {
    /// The node's position in `GraphProto.node`.
    var index: Int
    var proto: ONNXNode
    /// Input names with Identity and Dropout outputs replaced by what they pass through.
    var inputs: [String]

    var opType: String { proto.opType }
    var outputs: [String] { proto.outputs }
    var output: String { proto.outputs.first ?? "" }

    /// The node as errors name it: `Conv node 'Conv_12' (output 'input.4')`, or
    /// `Conv node #12 (output 'input.4')` for a node without a name.
    var reference: String {
        let outputText = proto.outputs.first.map { " (output '\($0)')" } ?? ""
        if proto.name.isEmpty {
            return "\(opType) node #\(index)\(outputText)"
        }
        return "\(opType) node '\(proto.name)'\(outputText)"
    }
}

/// A constant tensor and where it came from, for the change log.
struct ConstantValue {
    var tensor: ONNXTensor
    /// `initializer 'name'` or the reference of the Constant node.
    var origin: String
}

struct GraphIndex {
    /// Nodes other than Identity, Dropout and Constant, in graph order.
    var nodes: [GraphNode] = []
    var constants: [String: ConstantValue] = [:]
    /// For each value, the positions in `nodes` of the nodes that read it, in graph order.
    var consumers: [String: [Int]] = [:]
    /// The graph input that is not an initializer.
    var dataInput: ONNXValueInfo
    /// Graph output names, with Identity and Dropout outputs replaced.
    var outputs: [String] = []

    init(graph: ONNXGraph) throws(ConversionError) {
        var constants: [String: ConstantValue] = [:]
        for tensor in graph.initializers {
            constants[tensor.name] = ConstantValue(
                tensor: tensor, origin: "initializer '\(tensor.name)'")
        }
        let dataInputs = graph.inputs.filter { constants[$0.name] == nil }
        guard dataInputs.count == 1 else {
            let names = dataInputs.map { "'\($0.name)'" }.joined(separator: ", ")
            throw .invalidGraph(
                reason:
                    "expected one graph input that is not an initializer, found \(dataInputs.count)"
                    + (names.isEmpty ? "" : ": \(names)"))
        }
        dataInput = dataInputs[0]

        var aliases: [String: String] = [:]
        var walkedNodes: [GraphNode] = []
        var producers: [String: String] = [dataInput.name: "graph input '\(dataInput.name)'"]
        for (index, proto) in graph.nodes.enumerated() {
            let node = GraphNode(index: index, proto: proto, inputs: proto.inputs)
            for output in proto.outputs where !output.isEmpty {
                if let first = producers[output] ?? constants[output]?.origin {
                    throw .unexpectedNode(
                        node: node.reference, expected: "each value to be produced once",
                        found: "'\(output)' also produced by \(first)")
                }
                producers[output] = node.reference
            }
            guard proto.domain.isEmpty || proto.domain == "ai.onnx" else {
                walkedNodes.append(node)
                continue
            }
            switch proto.opType {
            case "Identity":
                try Self.checkPassThrough(node, inputCount: 1)
                aliases[proto.outputs[0]] = proto.inputs[0]
            case "Dropout":
                // Dropout is the identity at inference. From opset 12 its third input,
                // training_mode, could turn it on, so a graph that sets it is rejected.
                try Self.checkPassThrough(node, inputCount: 3)
                if proto.inputs.count == 3 && !proto.inputs[2].isEmpty {
                    throw .unexpectedNode(
                        node: node.reference, expected: "Dropout without a training_mode input",
                        found: "training_mode input '\(proto.inputs[2])'")
                }
                aliases[proto.outputs[0]] = proto.inputs[0]
            case "Constant":
                constants[proto.outputs.first ?? ""] = ConstantValue(
                    tensor: try Self.constantTensor(node), origin: node.reference)
            default:
                walkedNodes.append(node)
            }
        }

        func resolve(_ name: String) -> String {
            var current = name
            // Each step follows one Identity or Dropout, so a chain is at most that long.
            for _ in 0...aliases.count {
                guard let next = aliases[current] else { return current }
                current = next
            }
            return current
        }
        for (position, var node) in walkedNodes.enumerated() {
            node.inputs = node.proto.inputs.map(resolve)
            walkedNodes[position] = node
            for input in Set(node.inputs) where !input.isEmpty {
                consumers[input, default: []].append(position)
            }
        }
        for (name, _) in aliases {
            if let constant = constants[resolve(name)] {
                constants[name] = constant
            }
        }
        nodes = walkedNodes
        self.constants = constants
        outputs = graph.outputs.map { resolve($0.name) }
    }

    /// Nodes that read `value`, in graph order.
    func readers(of value: String) -> [GraphNode] {
        (consumers[value] ?? []).map { nodes[$0] }
    }

    /// Position of `node` in `nodes`.
    func position(of node: GraphNode) -> Int? {
        nodes.firstIndex { $0.index == node.index }
    }

    private static func checkPassThrough(_ node: GraphNode, inputCount: Int) throws(ConversionError)
    {
        guard let input = node.proto.inputs.first, !input.isEmpty,
            node.proto.inputs.count <= inputCount,
            let output = node.proto.outputs.first, !output.isEmpty
        else {
            throw .unexpectedNode(
                node: node.reference, expected: "one data input and one output",
                found: "inputs \(node.proto.inputs) and outputs \(node.proto.outputs)")
        }
    }

    /// Returns the tensor of a `Constant` node: its `value` attribute, or `value_float`,
    /// `value_floats`, `value_int` or `value_ints` (opset 12 and later).
    private static func constantTensor(_ node: GraphNode) throws(ConversionError) -> ONNXTensor {
        guard let attribute = node.proto.attributes.first else {
            throw .unexpectedNode(
                node: node.reference, expected: "a Constant with a value attribute",
                found: "no attribute")
        }
        if attribute.name == "value", let tensor = attribute.t {
            var copy = tensor
            copy.name = node.output
            return copy
        }
        // Build a tensor around the typed value; its storage is never read.
        let empty = ByteStorage(copying: [UInt8]())
        var tensor = ONNXTensor(storage: empty)
        tensor.name = node.output
        switch attribute.name {
        case "value_float" where attribute.f != nil:
            tensor.dataType = .float
            tensor.floatData = [attribute.f ?? 0]
        case "value_floats":
            tensor.dataType = .float
            tensor.dims = [Int64(attribute.floats.count)]
            tensor.floatData = attribute.floats
        case "value_int" where attribute.i != nil:
            tensor.dataType = .int64
            tensor.int64Data = [attribute.i ?? 0]
        case "value_ints":
            tensor.dataType = .int64
            tensor.dims = [Int64(attribute.ints.count)]
            tensor.int64Data = attribute.ints
        default:
            throw .unexpectedNode(
                node: node.reference,
                expected: "a Constant with a value, value_float(s) or value_int(s) attribute",
                found: "attribute '\(attribute.name)'")
        }
        return tensor
    }
}
