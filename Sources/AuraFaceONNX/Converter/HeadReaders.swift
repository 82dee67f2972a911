// Readers for the head between bn2 and the embedding: the flatten (Flatten or Reshape)
// and fc (Gemm, or MatMul with an optional Add).

/// The fc layer read from `Gemm`, or from `MatMul` and an optional `Add`.
struct FullyConnectedRead {
    var nodes: [GraphNode]
    /// `[outFeatures, inFeatures]`, as in PyTorch's `Linear`.
    var weight: [Float]
    var outFeatures: Int
    var inFeatures: Int
    var weightOrigin: String
    var bias: [Float]?
    var biasOrigin: String?
    var output: String
}

extension IResNetGraphWalker {
    // MARK: Flatten or Reshape

    /// Reads the flatten between `bn2` and `fc`. Returns the output and the feature count
    /// the node fixes, if it fixes one.
    mutating func readFlatten(_ node: GraphNode, input: String) throws(ConversionError)
        -> (output: String, features: Int?)
    {
        try expectOperator(node, ["Flatten", "Reshape"], role: "the flatten before fc")
        try expectInput(node, input)
        if node.opType == "Flatten" {
            let axis = try intAttribute(node, "axis", default: 1)
            guard axis == 1 || axis == -3 else {
                throw .unexpectedNode(
                    node: node.reference, expected: "axis 1 (flatten C, H and W of each image)",
                    found: "axis \(axis)")
            }
            visited.insert(node.index)
            return (node.output, nil)
        }

        let shapeInput = try constantInput(node, 1, role: "target shape")
        let target: [Int64]
        do {
            target = try shapeInput.tensor.int64Values()
        } catch {
            throw .invalidTensor(node: node.reference, input: node.inputs[1], error)
        }
        let allowZero = try intAttribute(node, "allowzero", default: 0)
        let expected = "a target shape [0, -1], [-1, K] or [N, K] that flattens C, H and W"
        guard target.count == 2, allowZero == 0 || !target.contains(0) else {
            throw .unexpectedNode(
                node: node.reference, expected: expected,
                found: "target shape \(target)" + (allowZero == 0 ? "" : " with allowzero 1"))
        }
        let (batch, features) = (target[0], target[1])
        let validFeatures = features > 0 || (features == -1 && batch != -1)
        guard batch >= -1, validFeatures else {
            throw .unexpectedNode(
                node: node.reference, expected: expected, found: "target shape \(target)")
        }
        if batch >= 1 {
            notes.append(
                "\(node.reference) has the constant target shape \(target), which fixes the batch size to \(batch); "
                    + "read as a flatten of each image")
        }
        visited.insert(node.index)
        return (node.output, features > 0 ? Int(features) : nil)
    }

    // MARK: Gemm, or MatMul and Add

    mutating func readFullyConnected(_ node: GraphNode, input: String) throws(ConversionError)
        -> FullyConnectedRead
    {
        try expectOperator(node, ["Gemm", "MatMul"], role: "fc")
        try expectInput(node, input)
        let weightInput = try constantInput(node, 1, role: "weight")
        let (shape, values) = try floatValues(weightInput, node: node, input: node.inputs[1])
        guard shape.count == 2, shape[0] >= 1, shape[1] >= 1 else {
            throw .unexpectedNode(
                node: node.reference, expected: "a 2-d fc weight", found: "shape \(shape)")
        }
        visited.insert(node.index)
        if node.opType == "Gemm" {
            return try readGemm(
                node, weightShape: shape, weight: values, weightOrigin: weightInput.origin)
        }

        // MatMul computes x · W with W of shape [K, E]; PyTorch's Linear stores W^T.
        var read = FullyConnectedRead(
            nodes: [node], weight: Self.transposed(values, rows: shape[0], columns: shape[1]),
            outFeatures: shape[1], inFeatures: shape[0],
            weightOrigin: "\(weightInput.origin), transposed from \(shape)", output: node.output)
        let readers = graph.readers(of: node.output)
        if readers.count == 1, readers[0].opType == "Add" {
            let add = readers[0]
            let biasIndex = add.inputs.firstIndex { $0 != node.output } ?? 1
            guard add.inputs.count == 2, add.inputs.contains(node.output) else {
                throw .unexpectedNode(
                    node: add.reference, expected: "Add of the MatMul output and a constant bias",
                    found: "inputs \(add.inputs)")
            }
            let biasInput = try constantInput(add, biasIndex, role: "fc bias")
            let (biasShape, bias) = try floatValues(
                biasInput, node: add, input: add.inputs[biasIndex])
            read.bias = try Self.vector(
                bias, shape: biasShape, length: read.outFeatures, node: add, role: "fc bias")
            read.biasOrigin = biasInput.origin
            read.output = add.output
            read.nodes.append(add)
            visited.insert(add.index)
        }
        return read
    }

    private mutating func readGemm(
        _ node: GraphNode, weightShape shape: [Int], weight values: [Float], weightOrigin: String
    )
        throws(ConversionError) -> FullyConnectedRead
    {
        let transA = try intAttribute(node, "transA", default: 0)
        guard transA == 0 else {
            throw .unexpectedNode(
                node: node.reference, expected: "transA 0", found: "transA \(transA)")
        }
        let transB = try intAttribute(node, "transB", default: 0)
        guard transB == 0 || transB == 1 else {
            throw .unexpectedNode(
                node: node.reference, expected: "transB 0 or 1", found: "transB \(transB)")
        }
        let alpha = try floatAttribute(node, "alpha", default: 1)
        let beta = try floatAttribute(node, "beta", default: 1)

        // transB 1 stores B as [E, K], PyTorch's layout. transB 0 stores [K, E].
        var weight =
            transB == 1 ? values : Self.transposed(values, rows: shape[0], columns: shape[1])
        let (outFeatures, inFeatures) = transB == 1 ? (shape[0], shape[1]) : (shape[1], shape[0])
        var origin =
            transB == 1 ? weightOrigin : "\(weightOrigin), transposed from \(shape) (transB 0)"
        if alpha != 1 {
            weight = weight.map { $0 * alpha }
            origin += ", times alpha \(alpha)"
            notes.append(
                "\(node.reference) has alpha \(alpha), which was multiplied into fc.weight")
        }
        var read = FullyConnectedRead(
            nodes: [node], weight: weight, outFeatures: outFeatures, inFeatures: inFeatures,
            weightOrigin: origin, output: node.output)
        if node.inputs.count >= 3 && !node.inputs[2].isEmpty {
            let biasInput = try constantInput(node, 2, role: "C (fc bias)")
            let (biasShape, bias) = try floatValues(biasInput, node: node, input: node.inputs[2])
            var vector = try Self.vector(
                bias, shape: biasShape, length: outFeatures, node: node, role: "C (fc bias)")
            var biasOrigin = biasInput.origin
            if beta != 1 {
                vector = vector.map { $0 * beta }
                biasOrigin += ", times beta \(beta)"
                notes.append(
                    "\(node.reference) has beta \(beta), which was multiplied into fc.bias")
            }
            read.bias = vector
            read.biasOrigin = biasOrigin
        }
        return read
    }

    /// Returns a bias as `[length]` values from shape `[length]`, `[1, length]`, or one value to repeat.
    private static func vector(
        _ values: [Float], shape: [Int], length: Int, node: GraphNode, role: String
    )
        throws(ConversionError) -> [Float]
    {
        if shape == [length] || shape == [1, length] {
            return values
        }
        if values.count == 1 && shape.count <= 2 {
            return [Float](repeating: values[0], count: length)
        }
        throw .unexpectedNode(
            node: node.reference, expected: "\(role) of shape [\(length)] or [1, \(length)]",
            found: "shape \(shape)")
    }

    /// Transposes a row-major `[rows, columns]` matrix to `[columns, rows]`.
    static func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: values.count) { output, count in
            values.withUnsafeBufferPointer { input in
                for row in 0..<rows {
                    for column in 0..<columns {
                        output[column * rows + row] = input[row * columns + column]
                    }
                }
            }
            count = values.count
        }
    }
}
