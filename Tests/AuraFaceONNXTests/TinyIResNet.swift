import AuraFace

/// Builds small IResNet graphs in the styles the converter accepts, with deterministic
/// values, and records the PyTorch tensors a correct conversion must produce.
struct TinyIResNet {
    enum BatchNormStyle {
        /// Every BN after a conv folded into the conv bias, as torch.onnx exports.
        case folded
        /// Bias-free convs, each followed by BatchNormalization.
        case unfolded
        /// Convs with a bias and a BatchNormalization after them.
        case biasAndBatchNorm
    }

    enum Flatten {
        case flatten(axis: Int64?)
        case reshape([Int64])
    }

    enum FullyConnected {
        case gemm(transB: Int64, alpha: Float?, beta: Float?)
        case matMul(withAdd: Bool)
    }

    enum SlopeShape {
        case c11, oneC11, c, scalar
    }

    var depths = [1, 2, 1, 1]
    var widths = [4, 4, 8, 8]
    var stemWidth = 4
    var embeddingSize = 6
    var inputSize = 16
    var seed: UInt64 = 7
    var style = BatchNormStyle.folded
    var flatten = Flatten.flatten(axis: 1)
    var fullyConnected = FullyConnected.gemm(transB: 1, alpha: 1, beta: 1)
    var featuresBatchNorm = true
    var slopeShape = SlopeShape.c11
    /// Nodes between the input and the stem: op type, constant value, and whether the
    /// constant has shape [1, 3, 1, 1] (otherwise [1]).
    var prelude: [(op: String, value: Float, perChannel: Bool)] = []
    /// BN epsilon, or nil to omit the attribute.
    var epsilon: Float? = 1e-5
    var opset: Int64 = 11
    /// Write attributes even at their default values.
    var writeDefaultAttributes = true
    var dynamicInputSize = false
    var namedNodes = true

    var architecture: IResNetArchitecture {
        IResNetArchitecture(
            stageDepths: depths, stageWidths: widths, stemWidth: stemWidth,
            embeddingSize: embeddingSize,
            inputSize: inputSize)
    }

    struct Built {
        var graph: TestGraph
        /// The PyTorch tensors a correct conversion writes.
        var expected: [String: [Float]]
        var folded: [String]
        /// Node positions by module path, such as `layer1.0.conv1` or `layer1.0.add`.
        var labels: [String: Int]
    }

    func build() -> Built {
        var builder = Builder(options: self)
        builder.run()
        return Built(
            graph: builder.graph, expected: builder.expected, folded: builder.folded,
            labels: builder.labels)
    }

    private struct Builder {
        let options: TinyIResNet
        var graph = TestGraph()
        var expected: [String: [Float]] = [:]
        var folded: [String] = []
        var labels: [String: Int] = [:]
        var state: UInt64
        var valueCounter = 0

        init(options: TinyIResNet) {
            self.options = options
            state = options.seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            graph.opset = options.opset
        }

        mutating func random() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int((state >> 33) % 2001) - 1000) / 1000
        }

        mutating func randoms(_ count: Int, positive: Bool = false) -> [Float] {
            (0..<count).map { _ in
                let value = random()
                return positive ? abs(value) + 0.5 : value
            }
        }

        mutating func newValue() -> String {
            valueCounter += 1
            return "v\(valueCounter)"
        }

        mutating func addNode(
            _ op: String, label: String, inputs: [String], attributes: [TestAttribute] = []
        ) -> String {
            let output = newValue()
            let name = options.namedNodes ? "\(op)_\(graph.nodes.count)" : ""
            labels[label] = graph.nodes.count
            graph.nodes.append(
                TestNode(
                    op: op, name: name, inputs: inputs, outputs: [output], attributes: attributes))
            return output
        }

        mutating func constant(_ name: String, _ dims: [Int], _ values: [Float]) -> String {
            graph.initializers.append(.float(name, dims, values))
            return name
        }

        mutating func run() {
            let size = options.inputSize
            graph.inputs = [
                TestValueInfo(
                    name: "input",
                    dims: [.parameter("N"), .value(3)]
                        + (options.dynamicInputSize
                            ? [.parameter("H"), .parameter("W")] : [.value(size), .value(size)]))
            ]
            var value = "input"
            for (index, step) in options.prelude.enumerated() {
                let dims = step.perChannel ? [1, 3, 1, 1] : [1]
                let constantName = constant(
                    "prelude\(index)", dims,
                    [Float](repeating: step.value, count: step.perChannel ? 3 : 1))
                value = addNode(step.op, label: "prelude\(index)", inputs: [value, constantName])
            }

            value = convolution(
                value, name: "conv1", norm: "bn1", inChannels: 3, outChannels: options.stemWidth,
                kernel: 3, stride: 1)
            value = prelu(value, name: "prelu", channels: options.stemWidth)
            var channels = options.stemWidth
            for stage in 0..<4 {
                for block in 0..<options.depths[stage] {
                    let prefix = IResNetArchitecture.blockName(stage: stage, block: block)
                    let width = options.widths[stage]
                    let input = value
                    var main = batchNorm(input, name: "\(prefix).bn1", channels: channels)
                    main = convolution(
                        main, name: "\(prefix).conv1", norm: "\(prefix).bn2", inChannels: channels,
                        outChannels: width, kernel: 3, stride: 1)
                    main = prelu(main, name: "\(prefix).prelu", channels: width)
                    main = convolution(
                        main, name: "\(prefix).conv2", norm: "\(prefix).bn3", inChannels: width,
                        outChannels: width, kernel: 3, stride: block == 0 ? 2 : 1)
                    var shortcut = input
                    if block == 0 {
                        shortcut = convolution(
                            input, name: "\(prefix).downsample.0", norm: "\(prefix).downsample.1",
                            inChannels: channels, outChannels: width, kernel: 1, stride: 2)
                    }
                    value = addNode("Add", label: "\(prefix).add", inputs: [main, shortcut])
                    channels = width
                }
            }
            value = batchNorm(value, name: "bn2", channels: channels)

            let spatial = options.inputSize / 16
            let inFeatures = channels * spatial * spatial
            switch options.flatten {
            case let .flatten(axis):
                value = addNode(
                    "Flatten", label: "flatten", inputs: [value],
                    attributes: axis.map { [.int("axis", $0)] } ?? [])
            case let .reshape(target):
                graph.initializers.append(.int64("flatten.shape", target))
                value = addNode("Reshape", label: "flatten", inputs: [value, "flatten.shape"])
            }

            let embedding = options.embeddingSize
            let weight = randoms(embedding * inFeatures)
            let bias = randoms(embedding)
            expected["fc.weight"] = weight
            switch options.fullyConnected {
            case let .gemm(transB, alpha, beta):
                let scaleA = alpha ?? 1
                let scaleB = beta ?? 1
                let stored =
                    (transB == 1 ? weight : transpose(weight, rows: embedding, columns: inFeatures))
                    .map { $0 / scaleA }
                let dims = transB == 1 ? [embedding, inFeatures] : [inFeatures, embedding]
                _ = constant("fc.weight", dims, stored)
                _ = constant("fc.bias", [embedding], bias.map { $0 / scaleB })
                var attributes: [TestAttribute] = [.int("transB", transB)]
                if let alpha { attributes.append(.float("alpha", alpha)) }
                if let beta { attributes.append(.float("beta", beta)) }
                value = addNode(
                    "Gemm", label: "fc", inputs: [value, "fc.weight", "fc.bias"],
                    attributes: attributes)
                expected["fc.bias"] = bias
            case let .matMul(withAdd):
                _ = constant(
                    "fc.weight", [inFeatures, embedding],
                    transpose(weight, rows: embedding, columns: inFeatures))
                value = addNode("MatMul", label: "fc", inputs: [value, "fc.weight"])
                if withAdd {
                    _ = constant("fc.bias", [embedding], bias)
                    value = addNode("Add", label: "fc.add", inputs: [value, "fc.bias"])
                    expected["fc.bias"] = bias
                } else {
                    expected["fc.bias"] = [Float](repeating: 0, count: embedding)
                }
            }
            if options.featuresBatchNorm {
                value = batchNorm(value, name: "features", channels: embedding)
            } else {
                folded.append("features")
            }
            graph.outputs = [
                TestValueInfo(name: value, dims: [.parameter("N"), .value(embedding)])
            ]
        }

        mutating func convolution(
            _ input: String, name: String, norm: String, inChannels: Int, outChannels: Int,
            kernel: Int, stride: Int
        ) -> String {
            let weight = randoms(outChannels * inChannels * kernel * kernel)
            _ = constant("\(name).weight", [outChannels, inChannels, kernel, kernel], weight)
            expected["\(name).weight"] = weight
            var attributes: [TestAttribute] = []
            let pad = Int64(kernel / 2)
            if options.writeDefaultAttributes || stride != 1 {
                attributes.append(.ints("strides", [Int64(stride), Int64(stride)]))
            }
            if options.writeDefaultAttributes || pad != 0 {
                attributes.append(.ints("pads", [pad, pad, pad, pad]))
            }
            if options.writeDefaultAttributes {
                attributes += [
                    .ints("kernel_shape", [Int64(kernel), Int64(kernel)]),
                    .ints("dilations", [1, 1]), .int("group", 1),
                ]
            }
            var inputs = [input, "\(name).weight"]
            let bias = randoms(outChannels)
            if options.style != .unfolded {
                _ = constant("\(name).bias", [outChannels], bias)
                inputs.append("\(name).bias")
            }
            let output = addNode("Conv", label: name, inputs: inputs, attributes: attributes)
            if options.style == .folded {
                expected["\(name).bias"] = bias
                folded.append(norm)
                return output
            }
            let normalized = batchNorm(output, name: norm, channels: outChannels)
            if options.style == .biasAndBatchNorm {
                expected["\(norm).running_mean"] = zip(expected["\(norm).running_mean"]!, bias).map
                { $0 - $1 }
            }
            return normalized
        }

        mutating func batchNorm(_ input: String, name: String, channels: Int) -> String {
            let scale = randoms(channels)
            let bias = randoms(channels)
            let mean = randoms(channels)
            let variance = randoms(channels, positive: true)
            var inputs = [input]
            for (field, values) in [
                ("weight", scale), ("bias", bias), ("running_mean", mean),
                ("running_var", variance),
            ] {
                inputs.append(constant("\(name).\(field)", [channels], values))
                expected["\(name).\(field)"] = values
            }
            var attributes: [TestAttribute] = []
            if let epsilon = options.epsilon {
                attributes.append(.float("epsilon", epsilon))
            }
            if options.writeDefaultAttributes {
                attributes.append(.float("momentum", 0.9))
            }
            return addNode(
                "BatchNormalization", label: name, inputs: inputs, attributes: attributes)
        }

        mutating func prelu(_ input: String, name: String, channels: Int) -> String {
            var slope = randoms(channels)
            let dims: [Int]
            switch options.slopeShape {
            case .c11: dims = [channels, 1, 1]
            case .oneC11: dims = [1, channels, 1, 1]
            case .c: dims = [channels]
            case .scalar:
                dims = [1]
                slope = [slope[0]]
            }
            _ = constant("\(name).weight", dims, slope)
            expected["\(name).weight"] =
                slope.count == 1 ? [Float](repeating: slope[0], count: channels) : slope
            return addNode("PRelu", label: name, inputs: [input, "\(name).weight"])
        }

        func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
            var output = [Float](repeating: 0, count: values.count)
            for row in 0..<rows {
                for column in 0..<columns {
                    output[column * rows + row] = values[row * columns + column]
                }
            }
            return output
        }
    }
}
