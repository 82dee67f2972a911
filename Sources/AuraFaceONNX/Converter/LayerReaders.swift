// Readers for the node kinds of an IResNet export. Each checks the op type, that the
// node reads the value the walk is at, its attributes (with ONNX defaults for omitted
// ones) and its constant inputs, and throws `ConversionError` naming the node otherwise.

/// A convolution read from a `Conv` node, before its batch norm is settled.
struct ConvolutionRead {
    var node: GraphNode
    var weight: [Float]
    /// `[outChannels, inChannels, kernelSize, kernelSize]`.
    var weightShape: [Int]
    var weightOrigin: String
    var bias: [Float]?
    var biasOrigin: String?

    var outChannels: Int { weightShape[0] }
    var inChannels: Int { weightShape[1] }
}

/// The kernel, stride, padding and channels a `Conv` node must have at one place in the network.
struct ConvolutionSpec {
    /// The PyTorch module path, such as `layer2.0.conv2`.
    var role: String
    var kernelSize: Int
    var stride: Int
    var padding: Int
    var inChannels: Int?
    var outChannels: Int?
    /// The reason for `stride`, quoted in errors.
    var strideReason: String
}

/// A batch norm read from a `BatchNormalization` node.
struct BatchNormRead {
    var node: GraphNode
    var scale: [Float]
    var bias: [Float]
    var mean: [Float]
    var variance: [Float]
    /// The origins of scale, bias, mean and variance, for the change log.
    var origins: [String]
    var epsilon: Float
}

extension IResNetGraphWalker {
    // MARK: Conv

    mutating func readConvolution(_ node: GraphNode, input: String, spec: ConvolutionSpec)
        throws(ConversionError)
        -> ConvolutionRead
    {
        let kernel = spec.kernelSize
        try expectOperator(node, ["Conv"], role: "\(spec.role), a \(kernel)x\(kernel) convolution")
        try expectInput(node, input)
        guard node.inputs.count <= 3, node.outputs.count == 1 else {
            throw .unexpectedNode(
                node: node.reference, expected: "a Conv with at most 3 inputs and 1 output",
                found: "\(node.inputs.count) inputs and \(node.outputs.count) outputs")
        }
        let weightInput = try constantInput(node, 1, role: "weight")
        let (weightShape, weight) = try floatValues(weightInput, node: node, input: node.inputs[1])
        let fits =
            weightShape.count == 4 && weightShape[0] >= 1 && weightShape[1] >= 1
            && weightShape[2] == kernel && weightShape[3] == kernel
            && (spec.outChannels.map { weightShape[0] == $0 } ?? true)
            && (spec.inChannels.map { weightShape[1] == $0 } ?? true)
        guard fits else {
            let outText = spec.outChannels.map(String.init) ?? "C_out"
            let inText = spec.inChannels.map(String.init) ?? "C_in"
            throw .unexpectedNode(
                node: node.reference,
                expected:
                    "a \(kernel)x\(kernel) kernel for \(spec.role), a weight of shape [\(outText), \(inText), \(kernel), \(kernel)]",
                found: "shape \(weightShape)")
        }

        if let kernelShape = try intsAttribute(node, "kernel_shape"),
            kernelShape != [Int64(kernel), Int64(kernel)]
        {
            throw .unexpectedNode(
                node: node.reference,
                expected: "kernel_shape [\(kernel), \(kernel)] for \(spec.role)",
                found: "\(kernelShape)")
        }
        let strides = try intsAttribute(node, "strides") ?? [1, 1]
        guard strides == [Int64(spec.stride), Int64(spec.stride)] else {
            throw .unexpectedNode(
                node: node.reference,
                expected:
                    "strides [\(spec.stride), \(spec.stride)] for \(spec.role) (\(spec.strideReason))",
                found: "\(strides)")
        }
        let pad = Int64(spec.padding)
        let pads = try intsAttribute(node, "pads") ?? [0, 0, 0, 0]
        guard pads == [pad, pad, pad, pad] else {
            throw .unexpectedNode(
                node: node.reference,
                expected: "pads [\(pad), \(pad), \(pad), \(pad)] for \(spec.role)",
                found: "\(pads)")
        }
        let dilations = try intsAttribute(node, "dilations") ?? [1, 1]
        guard dilations == [1, 1] else {
            throw .unexpectedNode(
                node: node.reference, expected: "dilations [1, 1]", found: "\(dilations)")
        }
        let group = try intAttribute(node, "group", default: 1)
        guard group == 1 else {
            throw .unexpectedNode(
                node: node.reference, expected: "group 1 (a dense convolution)",
                found: "group \(group)")
        }
        let autoPad = try stringAttribute(node, "auto_pad") ?? "NOTSET"
        guard autoPad == "NOTSET" || (autoPad == "VALID" && spec.padding == 0) else {
            throw .unexpectedNode(
                node: node.reference, expected: "auto_pad NOTSET with explicit pads",
                found: "auto_pad \(autoPad)")
        }

        var read = ConvolutionRead(
            node: node, weight: weight, weightShape: weightShape, weightOrigin: weightInput.origin)
        if node.inputs.count == 3 && !node.inputs[2].isEmpty {
            let biasInput = try constantInput(node, 2, role: "bias")
            let (biasShape, bias) = try floatValues(biasInput, node: node, input: node.inputs[2])
            guard biasShape == [read.outChannels] else {
                throw .unexpectedNode(
                    node: node.reference, expected: "a bias of shape [\(read.outChannels)]",
                    found: "shape \(biasShape)")
            }
            read.bias = bias
            read.biasOrigin = biasInput.origin
        }
        visited.insert(node.index)
        return read
    }

    // MARK: BatchNormalization

    mutating func readBatchNorm(_ node: GraphNode, input: String, channels: Int, role: String)
        throws(ConversionError)
        -> BatchNormRead
    {
        try expectOperator(node, ["BatchNormalization"], role: role)
        try expectInput(node, input)
        guard node.inputs.count == 5 else {
            throw .unexpectedNode(
                node: node.reference, expected: "5 inputs (X, scale, B, input_mean, input_var)",
                found: "\(node.inputs.count) inputs")
        }
        var parameters: [[Float]] = []
        var origins: [String] = []
        for (index, name) in ["scale", "B", "input_mean", "input_var"].enumerated() {
            let constant = try constantInput(node, index + 1, role: name)
            let (shape, values) = try floatValues(
                constant, node: node, input: node.inputs[index + 1])
            guard shape == [channels] else {
                throw .unexpectedNode(
                    node: node.reference, expected: "\(name) of shape [\(channels)] for \(role)",
                    found: "shape \(shape)")
            }
            parameters.append(values)
            origins.append(constant.origin)
        }

        // Opset 7 and older could set spatial 0, one mean per activation instead of per channel.
        let spatial = try intAttribute(node, "spatial", default: 1)
        guard spatial == 1 else {
            throw .unexpectedNode(
                node: node.reference, expected: "spatial 1 (statistics per channel)",
                found: "spatial \(spatial)")
        }
        let trainingMode = try intAttribute(node, "training_mode", default: 0)
        guard trainingMode == 0 else {
            throw .unexpectedNode(
                node: node.reference, expected: "training_mode 0 (inference statistics)",
                found: "training_mode \(trainingMode)")
        }
        for extra in node.outputs.dropFirst() where !extra.isEmpty {
            if let reader = graph.readers(of: extra).first {
                throw .unexpectedNode(
                    node: reader.reference,
                    expected:
                        "no node to read the training-only output '\(extra)' of \(node.reference)",
                    found: "a node reading it")
            }
        }
        let epsilon = try floatAttribute(node, "epsilon", default: 1e-5)
        guard epsilon > 0 && epsilon.isFinite else {
            throw .unexpectedNode(
                node: node.reference, expected: "a positive epsilon", found: "epsilon \(epsilon)")
        }
        if let negative = parameters[3].first(where: { $0 < 0 }) {
            throw .unexpectedNode(
                node: node.reference, expected: "a running variance of 0 or more in every channel",
                found: "\(negative) in '\(node.inputs[4])'")
        }
        if let first = firstBatchNormEpsilon {
            guard epsilon == first.value else {
                throw .inconsistentBatchNormEpsilon(
                    node: node.reference, expected: first.value, firstNode: first.node,
                    found: epsilon)
            }
        } else {
            firstBatchNormEpsilon = (epsilon, node.reference)
        }
        visited.insert(node.index)
        return BatchNormRead(
            node: node, scale: parameters[0], bias: parameters[1], mean: parameters[2],
            variance: parameters[3],
            origins: origins, epsilon: epsilon)
    }

    // MARK: PRelu

    /// Reads a PRelu with one slope per channel and stores it as `<name>.weight` of shape `[C]`.
    mutating func readPRelu(_ node: GraphNode, input: String, channels: Int, name: String)
        throws(ConversionError)
        -> String
    {
        try expectOperator(node, ["PRelu"], role: name)
        try expectInput(node, input)
        let slopeInput = try constantInput(node, 1, role: "slope")
        let (shape, values) = try floatValues(slopeInput, node: node, input: node.inputs[1])
        var slopes = values
        var detail = ""
        if values.count == 1 && shape.count <= 4 {
            // One slope shared by all channels (nn.PReLU() with num_parameters=1).
            slopes = [Float](repeating: values[0], count: channels)
            detail = " (one shared slope of shape \(shape), repeated for \(channels) channels)"
            sharedPReluSlopes.append(node.reference)
        } else if shape == [channels, 1, 1] || shape == [1, channels, 1, 1] {
            detail = " (reshaped from \(shape))"
        } else if shape == [channels] {
            guard options.preluSlopeIsPerChannel else {
                throw .ambiguousPReluSlope(node: node.reference, module: name, shape: shape)
            }
            detail = " (a [C] slope read as per-channel, as preluSlopeIsPerChannel requests)"
            perChannelOptionPRelus.append(node.reference)
        } else {
            throw .unexpectedNode(
                node: node.reference,
                expected:
                    "a slope of shape [\(channels), 1, 1] or [1, \(channels), 1, 1] for \(name)",
                found: "shape \(shape)")
        }
        visited.insert(node.index)
        try store(
            name + ".weight", shape: [channels], values: slopes, origin: slopeInput.origin,
            node: node, detail: detail)
        return node.output
    }

    // MARK: Shared checks

    func expectOperator(_ node: GraphNode, _ opTypes: [String], role: String)
        throws(ConversionError)
    {
        let standardDomain = node.proto.domain.isEmpty || node.proto.domain == "ai.onnx"
        guard standardDomain, opTypes.contains(node.opType) else {
            let found =
                standardDomain ? node.opType : "\(node.opType) from domain '\(node.proto.domain)'"
            throw .unexpectedNode(
                node: node.reference, expected: "\(opTypes.joined(separator: " or ")) for \(role)",
                found: found)
        }
    }

    func expectInput(_ node: GraphNode, _ value: String) throws(ConversionError) {
        guard node.inputs.first == value else {
            throw .unexpectedNode(
                node: node.reference, expected: "'\(value)' as input 0",
                found: "inputs \(node.inputs)")
        }
    }

    func constantInput(_ node: GraphNode, _ index: Int, role: String) throws(ConversionError)
        -> ConstantValue
    {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw .unexpectedNode(
                node: node.reference, expected: "input \(index), the \(role)",
                found: "\(node.inputs.count) inputs")
        }
        let name = node.inputs[index]
        guard let constant = graph.constants[name] else {
            throw .unexpectedNode(
                node: node.reference,
                expected:
                    "input \(index) ('\(name)'), the \(role), to be an initializer or Constant",
                found: "a value computed in the graph")
        }
        return constant
    }

    func floatValues(_ constant: ConstantValue, node: GraphNode, input: String)
        throws(ConversionError)
        -> (shape: [Int], values: [Float])
    {
        do {
            return (try constant.tensor.shape(), try constant.tensor.floatValues())
        } catch {
            throw .invalidTensor(node: node.reference, input: input, error)
        }
    }

    func intAttribute(_ node: GraphNode, _ name: String, default value: Int64)
        throws(ConversionError) -> Int64
    {
        guard let attribute = node.proto.attribute(name) else { return value }
        guard let integer = attribute.i, [nil, .undefined, .int].contains(attribute.kind) else {
            throw wrongAttributeType(node, attribute, expected: "an integer")
        }
        return integer
    }

    func floatAttribute(_ node: GraphNode, _ name: String, default value: Float)
        throws(ConversionError) -> Float
    {
        guard let attribute = node.proto.attribute(name) else { return value }
        guard let float = attribute.f, [nil, .undefined, .float].contains(attribute.kind) else {
            throw wrongAttributeType(node, attribute, expected: "a float")
        }
        return float
    }

    func intsAttribute(_ node: GraphNode, _ name: String) throws(ConversionError) -> [Int64]? {
        guard let attribute = node.proto.attribute(name) else { return nil }
        guard
            attribute.kind == .ints
                || ([nil, .undefined].contains(attribute.kind) && !attribute.ints.isEmpty)
        else {
            throw wrongAttributeType(node, attribute, expected: "a list of integers")
        }
        return attribute.ints
    }

    func stringAttribute(_ node: GraphNode, _ name: String) throws(ConversionError) -> String? {
        guard let attribute = node.proto.attribute(name) else { return nil }
        guard let string = attribute.string, [nil, .undefined, .string].contains(attribute.kind)
        else {
            throw wrongAttributeType(node, attribute, expected: "a string")
        }
        return string
    }

    private func wrongAttributeType(_ node: GraphNode, _ attribute: ONNXAttribute, expected: String)
        -> ConversionError
    {
        .unexpectedNode(
            node: node.reference, expected: "attribute '\(attribute.name)' to be \(expected)",
            found: "attribute type \(attribute.type)")
    }
}
