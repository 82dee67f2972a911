import AuraFace

// The structural match of an ONNX graph against arcface_torch's IResNet
// (recognition/arcface_torch/backbones/iresnet.py in deepinsight/insightface):
//
//   [Sub/Mul/Add/Div input normalization] -> conv1 -> [bn1] -> prelu
//   -> 4 stages of IBasicBlocks: bn1 -> conv1 -> [bn2] -> prelu -> conv2 -> [bn3] -> Add(shortcut)
//      where the first block of each stage has a stride-2 conv2 and a 1x1 stride-2
//      downsample conv -> [BN] on the shortcut
//   -> bn2 -> Flatten or Reshape -> fc (Gemm, or MatMul -> [Add]) -> [features] -> output
//
// A bracketed batch norm after a conv or fc may be missing, because the exporter folded
// it into the layer's bias. The walk follows values, never node or tensor names: each
// step takes the node that reads the current value and checks that it fits.

/// Walks a graph from its data input to its embedding and collects the IResNet's tensors
/// under their PyTorch names.
struct IResNetGraphWalker {
    let graph: GraphIndex
    let options: ONNXConversionOptions

    /// Tensors by PyTorch name.
    var tensors: [String: (shape: [Int], values: [Float])] = [:]
    /// One line per stored tensor or folded batch norm, for the CLI.
    var changeLog: [String] = []
    /// The ONNX value holding each layer's output, in forward order, named as
    /// `AuraFaceModel.rawEmbeddings(graphInput:batchSize:observer:)` reports the layer.
    var layerOutputs: [ONNXLayerOutput] = []
    /// Readings a user should know about, for `conversion_notes`.
    var notes: [String] = []
    var foldedBatchNorms: Set<String> = []
    /// `GraphNode.index` of every node the walk accepted.
    var visited: Set<Int> = []
    var firstBatchNormEpsilon: (value: Float, node: String)?

    var inputMean: Float = 127.5
    var inputScale: Float = 1 / 127.5
    var inputNormalizationInGraph = false

    // Collected so that each kind of reading gets one note, not one per layer.
    var sharedPReluSlopes: [String] = []
    var perChannelOptionPRelus: [String] = []
    var convBiasesFoldedIntoBatchNorms: [String] = []
    var zeroBiases: [String] = []

    init(graph: GraphIndex, options: ONNXConversionOptions) {
        self.graph = graph
        self.options = options
    }

    /// Matches the whole graph and returns the architecture it describes.
    mutating func walk() throws(ConversionError) -> IResNetArchitecture {
        let declared = try declaredInput()
        let inputName = graph.dataInput.name
        let inputReference = "graph input '\(inputName)'"
        let (normalized, normalizedProducer) = try readInputPrelude(
            from: inputName, producer: inputReference)

        // Stem: conv1 -> bn1 -> prelu.
        let stemNode = try soleReader(
            of: normalized, producer: normalizedProducer, ops: ["Conv"], role: "conv1")
        let stem = try readConvolution(
            stemNode, input: normalized,
            spec: ConvolutionSpec(
                role: "conv1", kernelSize: 3, stride: 1, padding: 1, inChannels: declared.channels,
                outChannels: nil,
                strideReason: "the stem keeps the input size"))
        var (value, producer) = try settleBatchNorm(after: stem, convName: "conv1", normName: "bn1")
        let stemPRelu = try soleReader(
            of: value, producer: producer.reference, ops: ["PRelu"], role: "prelu")
        value = try readPRelu(stemPRelu, input: value, channels: stem.outChannels, name: "prelu")
        producer = stemPRelu
        recordLayer("prelu", value)

        // Stages: a block input feeds bn1 and the shortcut. A Conv shortcut (downsample)
        // starts a new stage; an Add shortcut (identity) continues the current one.
        var depths: [Int] = []
        var widths: [Int] = []
        var channels = stem.outChannels
        while true {
            let readers = graph.readers(of: value)
            if readers.count == 1 && readers[0].opType == "BatchNormalization" {
                // bn2 after the last block, unless a Conv reads it: then it is the bn1 of a
                // block whose shortcut is missing.
                let next = graph.readers(of: readers[0].output)
                guard next.count == 1 && next[0].opType == "Conv" else { break }
                let prefix =
                    depths.isEmpty
                    ? IResNetArchitecture.blockName(stage: 0, block: 0)
                    : IResNetArchitecture.blockName(
                        stage: depths.count - 1, block: depths[depths.count - 1])
                throw .unexpectedNode(
                    node: readers[0].reference,
                    expected:
                        "the input of \(prefix) ('\(value)') to feed its bn1 and its shortcut, the residual Add "
                        + "or a downsample Conv",
                    found:
                        "only this BatchNormalization reading it, so the block has no residual Add")
            }
            let (bn1Node, shortcut) = try blockStart(value, readers: readers, producer: producer)
            let startsStage = shortcut.opType == "Conv"
            if startsStage {
                guard depths.count < 4 else {
                    throw .unexpectedNode(
                        node: shortcut.reference,
                        expected: "BatchNormalization for bn2 after 4 stages",
                        found: "a fifth stage starting here")
                }
                depths.append(0)
                widths.append(0)
            } else if depths.isEmpty {
                throw .unexpectedNode(
                    node: shortcut.reference,
                    expected:
                        "Conv for layer1.0.downsample.0 (the first block of every stage has a downsample branch)",
                    found: shortcut.opType)
            }
            let stage = depths.count - 1
            let prefix = IResNetArchitecture.blockName(stage: stage, block: depths[stage])
            let block = try readBlock(
                bn1: bn1Node, shortcut: shortcut, input: value, inChannels: channels,
                width: startsStage ? nil : widths[stage], prefix: prefix)
            widths[stage] = block.width
            depths[stage] += 1
            channels = block.width
            value = block.output
            producer = block.add
        }

        // Head: bn2 -> flatten -> fc -> features.
        let bn2Node = graph.readers(of: value)[0]
        guard depths.count == 4 else {
            throw .unexpectedNode(
                node: bn2Node.reference,
                expected: "4 stages before bn2, each starting with a downsample block",
                found: "\(depths.count) stages with \(depths) blocks")
        }
        let bn2 = try readBatchNorm(bn2Node, input: value, channels: channels, role: "bn2")
        try storeBatchNorm(bn2, name: "bn2")
        recordLayer("bn2", bn2Node.output)
        let flattenNode = try soleReader(
            of: bn2Node.output, producer: bn2Node.reference, ops: ["Flatten", "Reshape"],
            role: "the flatten before fc")
        let (flat, reshapeFeatures) = try readFlatten(flattenNode, input: bn2Node.output)
        let fcNode = try soleReader(
            of: flat, producer: flattenNode.reference, ops: ["Gemm", "MatMul"], role: "fc")
        let fc = try readFullyConnected(fcNode, input: flat)
        let inputSize = try resolveInputSize(
            declared: declared.size, fc: fc, finalChannels: channels,
            reshapeFeatures: reshapeFeatures)
        let output = try readEmbedding(fc)

        if let reader = graph.readers(of: output.value).first {
            throw .unexpectedNode(
                node: reader.reference, expected: "nothing to read the embedding '\(output.value)'",
                found: reader.opType)
        }
        guard graph.outputs.contains(output.value) else {
            throw .unexpectedNode(
                node: output.producer.reference,
                expected: "its output to be a graph output (the embedding)",
                found: "graph outputs \(graph.outputs)")
        }
        if let unused = graph.nodes.first(where: { !visited.contains($0.index) }) {
            throw .unusedNode(node: unused.reference)
        }
        for extra in graph.outputs where extra != output.value {
            notes.append(
                "graph output '\(extra)' is an intermediate value; only the embedding is converted")
        }
        addSummaryNotes()

        let architecture = IResNetArchitecture(
            stageDepths: depths, stageWidths: widths, stemWidth: stem.outChannels,
            embeddingSize: fc.outFeatures,
            inputSize: inputSize, inputChannels: stem.inChannels)
        do {
            try architecture.validate()
        } catch {
            throw .invalidArchitecture(error)
        }
        return architecture
    }

    // MARK: Blocks

    /// Identifies the two readers of a block input: its bn1 and its shortcut.
    private func blockStart(_ value: String, readers: [GraphNode], producer: GraphNode)
        throws(ConversionError)
        -> (bn1: GraphNode, shortcut: GraphNode)
    {
        let expected =
            "'\(value)' to feed a block's bn1 (BatchNormalization) and its shortcut (Add or a downsample Conv), "
            + "or only bn2 after the last block"
        guard readers.count == 2 else {
            if readers.count > 2 {
                throw .unexpectedNode(
                    node: readers[2].reference, expected: expected, found: "a third node reading it"
                )
            }
            throw .unexpectedNode(
                node: readers.first?.reference ?? producer.reference, expected: expected,
                found: readers.first.map { "only \($0.opType) reading it" } ?? "no node reading it")
        }
        guard let bn1Position = readers.firstIndex(where: { $0.opType == "BatchNormalization" })
        else {
            throw .unexpectedNode(
                node: readers[0].reference, expected: expected, found: readers[0].opType)
        }
        let shortcut = readers[1 - bn1Position]
        guard shortcut.opType == "Add" || shortcut.opType == "Conv" else {
            throw .unexpectedNode(
                node: shortcut.reference, expected: expected, found: shortcut.opType)
        }
        return (readers[bn1Position], shortcut)
    }

    /// Reads one IBasicBlock: bn1, conv1, bn2, prelu, conv2, bn3, the downsample branch if
    /// `width` is nil (the first block of a stage), and the Add.
    private mutating func readBlock(
        bn1 bn1Node: GraphNode, shortcut: GraphNode, input: String, inChannels: Int, width: Int?,
        prefix: String
    ) throws(ConversionError) -> (output: String, width: Int, add: GraphNode) {
        let downsample = width == nil
        let bn1 = try readBatchNorm(
            bn1Node, input: input, channels: inChannels, role: "\(prefix).bn1")
        try storeBatchNorm(bn1, name: "\(prefix).bn1")
        recordLayer("\(prefix).bn1", bn1Node.output)

        let conv1Node = try soleReader(
            of: bn1Node.output, producer: bn1Node.reference, ops: ["Conv"], role: "\(prefix).conv1")
        let conv1 = try readConvolution(
            conv1Node, input: bn1Node.output,
            spec: ConvolutionSpec(
                role: "\(prefix).conv1", kernelSize: 3, stride: 1, padding: 1,
                inChannels: inChannels,
                outChannels: width, strideReason: "a block's conv1 keeps the size"))
        let blockWidth = conv1.outChannels
        var (value, producer) = try settleBatchNorm(
            after: conv1, convName: "\(prefix).conv1", normName: "\(prefix).bn2")

        let preluNode = try soleReader(
            of: value, producer: producer.reference, ops: ["PRelu"], role: "\(prefix).prelu")
        value = try readPRelu(
            preluNode, input: value, channels: blockWidth, name: "\(prefix).prelu")
        recordLayer("\(prefix).prelu", value)

        let conv2Node = try soleReader(
            of: value, producer: preluNode.reference, ops: ["Conv"], role: "\(prefix).conv2")
        let conv2 = try readConvolution(
            conv2Node, input: value,
            spec: ConvolutionSpec(
                role: "\(prefix).conv2", kernelSize: 3, stride: downsample ? 2 : 1, padding: 1,
                inChannels: blockWidth, outChannels: blockWidth,
                strideReason: downsample
                    ? "the first block of each stage halves the size"
                    : "only the first block of a stage, the one with a downsample branch, changes the size"
            ))
        let (mainOutput, mainProducer) = try settleBatchNorm(
            after: conv2, convName: "\(prefix).conv2", normName: "\(prefix).bn3")

        var shortcutValue = input
        if downsample {
            let projection = try readConvolution(
                shortcut, input: input,
                spec: ConvolutionSpec(
                    role: "\(prefix).downsample.0", kernelSize: 1, stride: 2, padding: 0,
                    inChannels: inChannels,
                    outChannels: blockWidth,
                    strideReason: "the downsample branch matches the stride-2 conv2"))
            (shortcutValue, _) = try settleBatchNorm(
                after: projection, convName: "\(prefix).downsample.0",
                normName: "\(prefix).downsample.1", layerName: "\(prefix).downsample")
        }

        let add = try soleReader(
            of: mainOutput, producer: mainProducer.reference, ops: ["Add"],
            role: "the residual sum closing \(prefix)")
        try expectOperator(add, ["Add"], role: "the residual sum closing \(prefix)")
        guard add.inputs.count == 2, Set(add.inputs) == [mainOutput, shortcutValue] else {
            throw .unexpectedNode(
                node: add.reference,
                expected:
                    "Add of '\(mainOutput)' and the shortcut '\(shortcutValue)' closing \(prefix)",
                found: "inputs \(add.inputs)")
        }
        if downsample {
            let readers = graph.readers(of: shortcutValue)
            if let extra = readers.first(where: { $0.index != add.index }) {
                throw .unexpectedNode(
                    node: extra.reference,
                    expected: "the downsample output '\(shortcutValue)' to feed only the Add",
                    found: "another node reading it")
            }
        } else if shortcut.index != add.index {
            throw .unexpectedNode(
                node: shortcut.reference,
                expected:
                    "the block input to feed only \(prefix).bn1 and the Add closing the block",
                found: "a different Add")
        }
        visited.insert(add.index)
        recordLayer(prefix, add.output)
        return (add.output, blockWidth, add)
    }

    /// Stores a convolution and the batch norm after it. When the graph has a
    /// BatchNormalization there, it is kept and a conv bias is moved into its running mean.
    /// Otherwise the exporter folded it into the conv bias. The pair's output is recorded as
    /// the layer `layerName`, by default `normName`.
    private mutating func settleBatchNorm(
        after conv: ConvolutionRead, convName: String, normName: String, layerName: String? = nil
    )
        throws(ConversionError) -> (value: String, producer: GraphNode)
    {
        let readers = graph.readers(of: conv.node.output)
        try store(
            convName + ".weight", shape: conv.weightShape, values: conv.weight,
            origin: conv.weightOrigin, node: conv.node)
        if readers.count == 1 && readers[0].opType == "BatchNormalization" {
            var norm = try readBatchNorm(
                readers[0], input: conv.node.output, channels: conv.outChannels, role: normName)
            var meanDetail = ""
            if let bias = conv.bias {
                // BN(x + b) = scale * (x + b - mean) / sqrt(var + eps) + B, so the bias moves
                // into the mean and the conv keeps no bias, as the architecture requires.
                norm.mean = zip(norm.mean, bias).map { $0 - $1 }
                meanDetail = " minus \(convName)'s bias \(conv.biasOrigin ?? "")"
                convBiasesFoldedIntoBatchNorms.append(convName)
            }
            try storeBatchNorm(norm, name: normName, meanDetail: meanDetail)
            // With its bias moved into the batch norm, the engine's conv output lacks the
            // bias that the ONNX conv output has, so only the pair's output is comparable.
            if conv.bias == nil {
                recordLayer(convName, conv.node.output)
            }
            recordLayer(layerName ?? normName, norm.node.output)
            return (norm.node.output, norm.node)
        }

        var bias = conv.bias ?? []
        var origin = conv.biasOrigin ?? ""
        if conv.bias == nil {
            bias = [Float](repeating: 0, count: conv.outChannels)
            origin = "zeros, as the Conv has no bias and no BatchNormalization follows it"
            zeroBiases.append(convName)
        }
        try store(
            convName + ".bias", shape: [conv.outChannels], values: bias, origin: origin,
            node: conv.node)
        foldedBatchNorms.insert(normName)
        changeLog.append("\(normName) was folded into \(convName).bias by the exporter")
        recordLayer(layerName ?? normName, conv.node.output)
        return (conv.node.output, conv.node)
    }

    // MARK: Head

    /// Stores fc and the `features` batch norm, or records `features` as folded into fc
    /// when no BatchNormalization follows. Returns the embedding value.
    private mutating func readEmbedding(_ fc: FullyConnectedRead) throws(ConversionError)
        -> (value: String, producer: GraphNode)
    {
        let fcNode = fc.nodes[fc.nodes.count - 1]
        try store(
            "fc.weight", shape: [fc.outFeatures, fc.inFeatures], values: fc.weight,
            origin: fc.weightOrigin, node: fc.nodes[0])
        var bias = fc.bias ?? []
        var biasOrigin = fc.biasOrigin ?? ""
        if fc.bias == nil {
            bias = [Float](repeating: 0, count: fc.outFeatures)
            biasOrigin = "zeros, as the fc has no bias"
            notes.append("\(fcNode.reference) has no bias; stored a zero fc.bias")
        }
        try store(
            "fc.bias", shape: [fc.outFeatures], values: bias, origin: biasOrigin, node: fcNode)

        let readers = graph.readers(of: fc.output)
        if readers.count == 1 && readers[0].opType == "BatchNormalization" {
            let features = try readBatchNorm(
                readers[0], input: fc.output, channels: fc.outFeatures, role: "features")
            try storeBatchNorm(features, name: "features")
            recordLayer("fc", fc.output)
            recordLayer("features", features.node.output)
            return (features.node.output, features.node)
        }
        foldedBatchNorms.insert("features")
        changeLog.append("features was folded into fc.bias by the exporter")
        recordLayer("features", fc.output)
        return (fc.output, fcNode)
    }

    // MARK: Walking and storing

    /// The only node that reads `value`, which should be one of `ops`. When several nodes
    /// read it, the error names the first one that is not of `ops`, or else the second.
    func soleReader(of value: String, producer: String, ops: [String], role: String)
        throws(ConversionError)
        -> GraphNode
    {
        let expected = "\(ops.joined(separator: " or ")) for \(role)"
        let readers = graph.readers(of: value)
        guard let first = readers.first else {
            throw .unexpectedNode(
                node: producer, expected: "its output '\(value)' to feed \(expected)",
                found: graph.outputs.contains(value)
                    ? "a graph output that no node reads" : "no node reading it")
        }
        guard readers.count == 1 else {
            let extra = readers.first { !ops.contains($0.opType) } ?? readers[1]
            throw .unexpectedNode(
                node: extra.reference, expected: "'\(value)' to feed only \(expected)",
                found: "another node reading it")
        }
        return first
    }

    private mutating func recordLayer(_ layer: String, _ value: String) {
        layerOutputs.append(ONNXLayerOutput(layer: layer, value: value))
    }

    mutating func store(
        _ name: String, shape: [Int], values: [Float], origin: String, node: GraphNode,
        detail: String = ""
    ) throws(ConversionError) {
        let nonFinite = values.reduce(0) { $1.isFinite ? $0 : $0 + 1 }
        guard nonFinite == 0 else {
            throw .nonFiniteValues(tensor: name, node: node.reference, count: nonFinite)
        }
        tensors[name] = (shape, values)
        changeLog.append("\(name) \(shape) <- \(origin) of \(node.reference)\(detail)")
    }

    private mutating func storeBatchNorm(
        _ norm: BatchNormRead, name: String, meanDetail: String = ""
    )
        throws(ConversionError)
    {
        let channels = [norm.scale.count]
        try store(
            name + ".weight", shape: channels, values: norm.scale, origin: norm.origins[0],
            node: norm.node)
        try store(
            name + ".bias", shape: channels, values: norm.bias, origin: norm.origins[1],
            node: norm.node)
        try store(
            name + ".running_mean", shape: channels, values: norm.mean, origin: norm.origins[2],
            node: norm.node,
            detail: meanDetail)
        try store(
            name + ".running_var", shape: channels, values: norm.variance, origin: norm.origins[3],
            node: norm.node)
    }

    private mutating func addSummaryNotes() {
        func list(_ names: [String]) -> String {
            let listed = names.prefix(3).joined(separator: ", ")
            return names.count > 3 ? "\(listed) and \(names.count - 3) more" : listed
        }
        if !convBiasesFoldedIntoBatchNorms.isEmpty {
            notes.append(
                "\(convBiasesFoldedIntoBatchNorms.count) convolutions have a bias and a BatchNormalization after them "
                    + "(\(list(convBiasesFoldedIntoBatchNorms))); each bias was subtracted from that batch norm's running_mean"
            )
        }
        if !zeroBiases.isEmpty {
            notes.append(
                "\(list(zeroBiases)) \(zeroBiases.count == 1 ? "has" : "have") no bias and no BatchNormalization after "
                    + "\(zeroBiases.count == 1 ? "it" : "them"); stored a zero bias and recorded the batch norm as folded"
            )
        }
        if !sharedPReluSlopes.isEmpty {
            notes.append(
                "\(list(sharedPReluSlopes)) \(sharedPReluSlopes.count == 1 ? "has" : "have") one slope for all channels; "
                    + "it was repeated per channel")
        }
        if !perChannelOptionPRelus.isEmpty {
            notes.append(
                "\(perChannelOptionPRelus.count) PRelu slopes of shape [C] (\(list(perChannelOptionPRelus))) were read as "
                    + "one slope per channel, as the preluSlopeIsPerChannel option requests")
        }
    }
}
