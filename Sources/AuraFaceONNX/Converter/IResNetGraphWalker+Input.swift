// The input end of the walk: the declared input shape, the Sub/Mul prelude that some
// exporters put before the stem, and the input size checked against fc's in-features.

extension IResNetGraphWalker {
    /// The input size: the graph input's static height, or else read from fc's in-features.
    mutating func resolveInputSize(
        declared: Int?, fc: FullyConnectedRead, finalChannels: Int, reshapeFeatures: Int?
    ) throws(ConversionError) -> Int {
        let fcNode = fc.nodes[0]
        if let reshapeFeatures, reshapeFeatures != fc.inFeatures {
            throw .unexpectedNode(
                node: fcNode.reference,
                expected: "\(reshapeFeatures) in-features, the Reshape's target",
                found: "\(fc.inFeatures)")
        }
        if let size = declared {
            guard size >= 16 && size % 16 == 0 else {
                throw .invalidGraph(
                    reason:
                        "graph input '\(graph.dataInput.name)' is \(size)x\(size); expected a multiple of 16, "
                        + "as the four stride-2 stages halve it four times")
            }
            let spatial = size / 16
            guard fc.inFeatures == finalChannels * spatial * spatial else {
                throw .unexpectedNode(
                    node: fcNode.reference,
                    expected:
                        "\(finalChannels) x \(spatial) x \(spatial) = \(finalChannels * spatial * spatial) "
                        + "in-features for a \(size)x\(size) input",
                    found: "\(fc.inFeatures)")
            }
            return size
        }
        let perChannel = fc.inFeatures / finalChannels
        let spatial = Int(Double(perChannel).squareRoot().rounded())
        guard fc.inFeatures % finalChannels == 0, spatial * spatial == perChannel, spatial >= 1
        else {
            throw .unexpectedNode(
                node: fcNode.reference,
                expected:
                    "in-features \(finalChannels) x S x S for a square final feature map of side S",
                found: "\(fc.inFeatures)")
        }
        notes.append(
            "the graph input has no fixed height and width; input size \(16 * spatial) was derived from "
                + "fc's \(fc.inFeatures) in-features = \(finalChannels) x \(spatial) x \(spatial)")
        return 16 * spatial
    }

    /// Returns the channel count and square size that the graph input's shape declares, where static.
    func declaredInput() throws(ConversionError) -> (channels: Int?, size: Int?) {
        let input = graph.dataInput
        if let type = input.elementType, type != .float && type != .undefined {
            throw .invalidGraph(
                reason: "graph input '\(input.name)' has element type \(type); expected FLOAT")
        }
        guard let shape = input.shape else {
            return (nil, nil)
        }
        guard shape.count == 4 else {
            throw .invalidGraph(
                reason:
                    "graph input '\(input.name)' has \(shape.count) dimensions; expected 4, [N, C, H, W]"
            )
        }
        var channels: Int?
        if case let .value(count) = shape[1], count > 0 {
            channels = Int(count)
        }
        guard case let .value(height) = shape[2], case let .value(width) = shape[3] else {
            return (channels, nil)
        }
        guard height == width, height > 0 else {
            throw .invalidGraph(
                reason:
                    "graph input '\(input.name)' is \(height)x\(width) (H x W); expected a square input"
            )
        }
        return (channels, Int(height))
    }

    /// Reads Sub, Mul, Add and Div nodes with constant operands between the graph input and
    /// the stem, and records the affine map they compute as `input_mean` and `input_scale`.
    mutating func readInputPrelude(from input: String, producer: String)
        throws(ConversionError)
        -> (value: String, producer: String)
    {
        var value = input
        var producerReference = producer
        // The prelude maps v to scale * v + shift.
        var scale = 1.0
        var shift = 0.0
        var steps: [GraphNode] = []
        while true {
            let readers = graph.readers(of: value)
            guard readers.count == 1, ["Sub", "Mul", "Add", "Div"].contains(readers[0].opType),
                readers[0].proto.domain.isEmpty || readers[0].proto.domain == "ai.onnx"
            else { break }
            let node = readers[0]
            guard node.inputs.count == 2, node.inputs[0] != node.inputs[1],
                let valueIndex = node.inputs.firstIndex(of: value)
            else {
                throw .unexpectedNode(
                    node: node.reference, expected: "\(node.opType) of '\(value)' and a constant",
                    found: "inputs \(node.inputs)")
            }
            let constant = try constantInput(
                node, 1 - valueIndex, role: "input normalization constant")
            let (shape, values) = try floatValues(
                constant, node: node, input: node.inputs[1 - valueIndex])
            let operand = try Self.uniformValue(values, shape: shape, node: node)
            switch (node.opType, valueIndex) {
            case ("Sub", 0):
                shift -= operand
            case ("Sub", _):
                scale = -scale
                shift = operand - shift
            case ("Add", _):
                shift += operand
            case ("Mul", _):
                scale *= operand
                shift *= operand
            case ("Div", 0) where operand != 0:
                scale /= operand
                shift /= operand
            default:
                throw .unexpectedNode(
                    node: node.reference, expected: "division of '\(value)' by a non-zero constant",
                    found: valueIndex == 0 ? "division by 0" : "a constant divided by the input")
            }
            visited.insert(node.index)
            steps.append(node)
            value = node.output
            producerReference = node.reference
        }

        if steps.isEmpty {
            notes.append(
                "the graph has no input normalization; recorded arcface_torch's (v - 127.5) / 127.5 "
                    + "as input_mean and input_scale")
            return (value, producerReference)
        }
        guard scale != 0, scale.isFinite, shift.isFinite else {
            throw .unexpectedNode(
                node: steps[steps.count - 1].reference,
                expected: "input normalization with a non-zero, finite scale",
                found: "v * \(scale) + \(shift)")
        }
        inputScale = Float(scale)
        inputMean = Float(-shift / scale)
        inputNormalizationInGraph = true
        let stepList = steps.map(\.reference).joined(separator: ", ")
        notes.append(
            "the graph normalizes its input itself (\(stepList)): pixel v becomes (v - \(inputMean)) * \(inputScale); "
                + "recorded as input_mean and input_scale with input_normalization_in_graph true")
        return (value, producerReference)
    }

    /// Returns the value of a normalization constant that is a scalar, or per-channel with
    /// one value repeated. Unequal values are rejected because the weight file stores one
    /// mean and one scale for all channels.
    private static func uniformValue(_ values: [Float], shape: [Int], node: GraphNode)
        throws(ConversionError) -> Double
    {
        guard let first = values.first, values.allSatisfy({ $0 == first }) else {
            throw .unexpectedNode(
                node: node.reference,
                expected:
                    "one normalization value for all channels (the weight file stores one mean and one scale)",
                found: "values \(Array(values.prefix(8)))")
        }
        // Aligned to [N, C, H, W] from the right, only the channel axis may exceed 1.
        let aligned = [Int](repeating: 1, count: max(0, 4 - shape.count)) + shape
        guard shape.count <= 4,
            aligned.enumerated().allSatisfy({ $0.offset == 1 || $0.element == 1 })
        else {
            throw .unexpectedNode(
                node: node.reference, expected: "a scalar or [1, C, 1, 1] normalization constant",
                found: "shape \(shape)")
        }
        return Double(first)
    }
}
