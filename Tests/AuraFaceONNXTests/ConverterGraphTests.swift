import AuraFace
import AuraFaceONNX
import Foundation
import Testing

/// The converter on small graphs built in Swift, one export style or defect at a time.
@Suite struct ConverterGraphTests {
    // MARK: Accepted styles

    @Test func foldedExportConverts() throws {
        let built = TinyIResNet().build()
        let converted = try convertGraph(built.graph)
        let metadata = converted.metadata
        #expect(metadata.architecture == TinyIResNet().architecture)
        #expect(metadata.onnxOpset == 11)
        #expect(metadata.sourceFile == "test.onnx")
        #expect(metadata.sourceSHA256 == SHA256.hexDigest(of: built.graph.encoded))
        #expect(metadata.batchNormEpsilon == 1e-5)
        #expect(metadata.channelOrder == "RGB")
        #expect(metadata.inputMean == 127.5)
        #expect(metadata.inputScale == 1 / 127.5)
        #expect(!metadata.inputNormalizationInGraph)
        let order = metadata.architecture.batchNorms.map(\.name).filter {
            Set(built.folded).contains($0)
        }
        #expect(metadata.foldedBatchNorms == order)
        expectTensors(converted, match: built)
        #expect(
            converted.changeLog.contains {
                $0.hasPrefix(
                    "layer1.0.conv1.weight [4, 4, 3, 3] <- initializer 'layer1.0.conv1.weight' of Conv node"
                )
            })
        #expect(
            converted.changeLog.contains(
                "layer1.0.bn2 was folded into layer1.0.conv1.bias by the exporter"))
    }

    @Test func unfoldedExportConverts() throws {
        var options = TinyIResNet()
        options.style = .unfolded
        let built = options.build()
        let converted = try convertGraph(built.graph)
        #expect(converted.metadata.foldedBatchNorms.isEmpty)
        expectTensors(converted, match: built)
    }

    @Test func convBiasMovesIntoBatchNormMean() throws {
        var options = TinyIResNet()
        options.style = .biasAndBatchNorm
        let built = options.build()
        let converted = try convertGraph(built.graph)
        #expect(converted.metadata.foldedBatchNorms.isEmpty)
        expectTensors(converted, match: built)
        #expect(
            converted.metadata.conversionNotes.contains {
                $0.contains("each bias was subtracted from that batch norm's running_mean")
            })
    }

    @Test func deeperAndWiderVariantsConvert() throws {
        var options = TinyIResNet()
        options.depths = [2, 3, 1, 2]
        options.widths = [3, 5, 6, 7]
        options.stemWidth = 2
        options.embeddingSize = 5
        options.inputSize = 32
        let built = options.build()
        let converted = try convertGraph(built.graph)
        #expect(converted.metadata.architecture == options.architecture)
        expectTensors(converted, match: built)
    }

    @Test func omittedDefaultAttributesAreAccepted() throws {
        var options = TinyIResNet()
        options.writeDefaultAttributes = false
        options.epsilon = nil
        options.flatten = .flatten(axis: nil)
        options.fullyConnected = .gemm(transB: 1, alpha: nil, beta: nil)
        let built = options.build()
        let converted = try convertGraph(built.graph)
        #expect(converted.metadata.batchNormEpsilon == 1e-5)
        expectTensors(converted, match: built)
    }

    @Test func sharedNonDefaultEpsilonIsRecorded() throws {
        var options = TinyIResNet()
        options.epsilon = 2e-5
        let converted = try convertGraph(options.build().graph)
        #expect(converted.metadata.batchNormEpsilon == 2e-5)
    }

    @Test(arguments: [[0, -1], [-1, 8], [1, 8], [1, -1], [0, 8]] as [[Int64]])
    func reshapeReadsAsFlatten(target: [Int64]) throws {
        var options = TinyIResNet()
        options.flatten = .reshape(target)
        let built = options.build()
        let converted = try convertGraph(built.graph)
        expectTensors(converted, match: built)
        let pinned = converted.metadata.conversionNotes.contains {
            $0.contains("fixes the batch size to 1")
        }
        #expect(pinned == (target[0] == 1))
    }

    @Test func gemmWithoutTransposeAndScalesConverts() throws {
        var options = TinyIResNet()
        options.fullyConnected = .gemm(transB: 0, alpha: 0.5, beta: 2)
        let built = options.build()
        let converted = try convertGraph(built.graph)
        expectTensors(converted, match: built)
        let notes = converted.metadata.conversionNotes
        #expect(
            notes.contains { $0.contains("has alpha 0.5, which was multiplied into fc.weight") })
        #expect(notes.contains { $0.contains("has beta 2.0, which was multiplied into fc.bias") })
        #expect(
            converted.changeLog.contains {
                $0.hasPrefix(
                    "fc.weight [6, 8] <- initializer 'fc.weight', transposed from [8, 6] (transB 0), times alpha 0.5"
                )
            })
    }

    @Test func matMulAndAddConverts() throws {
        var options = TinyIResNet()
        options.fullyConnected = .matMul(withAdd: true)
        let built = options.build()
        expectTensors(try convertGraph(built.graph), match: built)
    }

    @Test func matMulWithoutBiasGetsZeroBias() throws {
        var options = TinyIResNet()
        options.fullyConnected = .matMul(withAdd: false)
        let built = options.build()
        let converted = try convertGraph(built.graph)
        expectTensors(converted, match: built)
        #expect(
            converted.metadata.conversionNotes.contains {
                $0.contains("has no bias; stored a zero fc.bias")
            })
    }

    @Test func convWithoutBiasOrBatchNormGetsZeroBias() throws {
        var built = TinyIResNet().build()
        let conv = built.labels["layer2.1.conv1"]!
        built.graph.nodes[conv].inputs.removeLast()
        built.expected["layer2.1.conv1.bias"] = [Float](repeating: 0, count: 4)
        let converted = try convertGraph(built.graph)
        expectTensors(converted, match: built)
        #expect(
            converted.metadata.conversionNotes.contains(
                "layer2.1.conv1 has no bias and no BatchNormalization after it; stored a zero bias and recorded the batch norm as folded"
            ))
    }

    @Test func intermediateGraphOutputIsNoted() throws {
        var built = TinyIResNet().build()
        let bn2 = built.graph.nodes[built.labels["bn2"]!].output
        built.graph.outputs.append(TestValueInfo(name: bn2))
        let converted = try convertGraph(built.graph)
        expectTensors(converted, match: built)
        #expect(
            converted.metadata.conversionNotes.contains(
                "graph output '\(bn2)' is an intermediate value; only the embedding is converted"))
    }

    @Test func missingFeaturesBatchNormIsFolded() throws {
        var options = TinyIResNet()
        options.featuresBatchNorm = false
        let built = options.build()
        let converted = try convertGraph(built.graph)
        #expect(converted.metadata.foldedBatchNorms.last == "features")
        expectTensors(converted, match: built)
    }

    @Test func subMulPreludeIsRecorded() throws {
        var options = TinyIResNet()
        options.prelude = [("Sub", 127.5, false), ("Mul", 0.0078125, true)]
        let converted = try convertGraph(options.build().graph)
        #expect(converted.metadata.inputMean == 127.5)
        #expect(converted.metadata.inputScale == 0.0078125)
        #expect(converted.metadata.inputNormalizationInGraph)
        #expect(
            converted.metadata.conversionNotes.contains {
                $0.hasPrefix("the graph normalizes its input itself (Sub node 'Sub_0'")
            })
    }

    @Test func mulAddPreludeIsRecorded() throws {
        var options = TinyIResNet()
        options.prelude = [("Mul", 0.0078125, false), ("Add", -1, false)]
        let converted = try convertGraph(options.build().graph)
        #expect(converted.metadata.inputMean == 128)
        #expect(converted.metadata.inputScale == 0.0078125)
        #expect(converted.metadata.inputNormalizationInGraph)
    }

    @Test func missingPreludeRecordsDefault() throws {
        let converted = try convertGraph(TinyIResNet().build().graph)
        #expect(
            converted.metadata.conversionNotes.contains {
                $0.hasPrefix("the graph has no input normalization")
            })
    }

    @Test func preludeWithUnequalChannelsIsRejected() throws {
        var options = TinyIResNet()
        options.prelude = [("Sub", 127.5, true)]
        var built = options.build()
        built.graph.initializers[0] = .float("prelude0", [1, 3, 1, 1], [123, 117, 104])
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description
                == "Sub node 'Sub_0' (output 'v1') does not fit an IResNet: expected one normalization value for all "
                + "channels (the weight file stores one mean and one scale), found values [123.0, 117.0, 104.0]"
        )
    }

    @Test(arguments: [TinyIResNet.SlopeShape.oneC11, .scalar])
    func preluSlopeShapesConvert(shape: TinyIResNet.SlopeShape) throws {
        var options = TinyIResNet()
        options.slopeShape = shape
        let built = options.build()
        expectTensors(try convertGraph(built.graph), match: built)
    }

    @Test func preluSlopeOfShapeCIsRejected() throws {
        var options = TinyIResNet()
        options.slopeShape = .c
        let error = try #require(conversionError(options.build().graph))
        #expect(
            error
                == .ambiguousPReluSlope(
                    node: "PRelu node 'PRelu_1' (output 'v2')", module: "prelu", shape: [4]))
        #expect(error.description.contains("aligns a 1-D slope with the width axis"))
        #expect(error.description.contains("--prelu-slope-per-channel"))
    }

    @Test func preluSlopeOfShapeCAcceptedWithOption() throws {
        var options = TinyIResNet()
        options.slopeShape = .c
        let built = options.build()
        var conversion = ONNXConversionOptions()
        conversion.preluSlopeIsPerChannel = true
        let converted = try convertGraph(built.graph, options: conversion)
        expectTensors(converted, match: built)
        #expect(
            converted.metadata.conversionNotes.contains {
                $0.contains("were read as one slope per channel")
            })
    }

    @Test func dynamicInputSizeComesFromFC() throws {
        var options = TinyIResNet()
        options.dynamicInputSize = true
        options.inputSize = 32
        let converted = try convertGraph(options.build().graph)
        #expect(converted.metadata.architecture.inputSize == 32)
        #expect(
            converted.metadata.conversionNotes.contains {
                $0.contains("input size 32 was derived from fc's 32 in-features = 8 x 2 x 2")
            })
    }

    @Test func identityAndDropoutAreSkipped() throws {
        let built = TinyIResNet().build()
        var graph = built.graph
        let flatten = built.labels["flatten"]!
        let flattenOutput = graph.nodes[flatten].output
        // Dropout after the flatten, Identity on the stem's weight.
        graph.nodes.insert(
            TestNode(
                op: "Dropout", name: "drop", inputs: [flattenOutput], outputs: ["dropped", "mask"]),
            at: flatten + 1)
        graph.nodes[flatten + 2].inputs[0] = "dropped"
        graph.nodes.insert(
            TestNode(
                op: "Identity", name: "alias", inputs: ["conv1.weight"], outputs: ["conv1.alias"]),
            at: 0)
        graph.nodes[1].inputs[1] = "conv1.alias"
        expectTensors(try convertGraph(graph), match: built)
    }

    @Test func constantNodesServeAsWeights() throws {
        let built = TinyIResNet().build()
        var graph = built.graph
        let slope = graph.initializers.firstIndex { $0.name == "prelu.weight" }!
        let tensor = graph.initializers.remove(at: slope)
        graph.nodes.insert(
            TestNode(
                op: "Constant", name: "slope", inputs: [], outputs: ["prelu.weight"],
                attributes: [.tensor("value", tensor)]), at: 0)
        expectTensors(try convertGraph(graph), match: built)
    }

    @Test func initializersListedAsInputsAreAccepted() throws {
        let built = TinyIResNet().build()
        var graph = built.graph
        graph.inputs += graph.initializers.map {
            TestValueInfo(name: $0.name, dims: $0.dims.map { .value(Int($0)) })
        }
        expectTensors(try convertGraph(graph), match: built)
    }

    @Test(arguments: [7, 8, 13, 17, 21] as [Int64])
    func supportedOpsetsConvert(opset: Int64) throws {
        var options = TinyIResNet()
        options.opset = opset
        #expect(try convertGraph(options.build().graph).metadata.onnxOpset == Int(opset))
    }

    @Test func oldBatchNormAttributesAreIgnored() throws {
        var options = TinyIResNet()
        options.opset = 8
        var built = options.build()
        let bn2 = built.labels["bn2"]!
        built.graph.nodes[bn2].setAttribute(.int("spatial", 1))
        built.graph.nodes[bn2].setAttribute(.ints("consumed_inputs", [0, 0, 0, 1, 1]))
        expectTensors(try convertGraph(built.graph), match: built)
    }

    // MARK: Rejected graphs

    @Test(arguments: [6, 22] as [Int64])
    func unsupportedOpsetIsRejected(opset: Int64) throws {
        var options = TinyIResNet()
        options.opset = opset
        let error = try #require(conversionError(options.build().graph))
        #expect(
            error.description == "the model uses opset \(opset); expected an opset from 7 to 21")
    }

    @Test func missingOpsetIsRejected() throws {
        var graph = TinyIResNet().build().graph
        graph.opset = nil
        let error = try #require(conversionError(graph))
        #expect(
            error.description
                == "the model imports no standard ONNX opset; expected an opset from 7 to 21")
    }

    @Test func reluInPlaceOfPReluIsRejected() throws {
        var built = TinyIResNet().build()
        let prelu = built.labels["layer2.0.prelu"]!
        built.graph.nodes[prelu].op = "Relu"
        built.graph.nodes[prelu].inputs.removeLast()
        let name = built.graph.nodes[prelu].name
        let output = built.graph.nodes[prelu].output
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description
                == "Relu node '\(name)' (output '\(output)') does not fit an IResNet: expected PRelu for layer2.0.prelu, found Relu"
        )
    }

    @Test func unnamedNodeIsNamedByTypeAndIndex() throws {
        var options = TinyIResNet()
        options.namedNodes = false
        var built = options.build()
        let prelu = built.labels["layer2.0.prelu"]!
        built.graph.nodes[prelu].op = "Relu"
        let output = built.graph.nodes[prelu].output
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasPrefix(
                "Relu node #\(prelu) (output '\(output)') does not fit an IResNet"))
    }

    @Test func wrongKernelSizeIsRejected() throws {
        var built = TinyIResNet().build()
        let conv = built.labels["layer1.0.conv1"]!
        let weight = built.graph.initializers.firstIndex { $0.name == "layer1.0.conv1.weight" }!
        built.graph.initializers[weight] = .float(
            "layer1.0.conv1.weight", [4, 4, 5, 5], [Float](repeating: 0.1, count: 400))
        built.graph.nodes[conv].setAttribute(.ints("kernel_shape", [5, 5]))
        built.graph.nodes[conv].setAttribute(.ints("pads", [2, 2, 2, 2]))
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description
                == "Conv node 'Conv_\(conv)' (output '\(built.graph.nodes[conv].output)') does not fit an IResNet: "
                + "expected a 3x3 kernel for layer1.0.conv1, a weight of shape [C_out, 4, 3, 3], found shape [4, 4, 5, 5]"
        )
    }

    @Test func strideInNonFirstBlockIsRejected() throws {
        var built = TinyIResNet().build()
        let conv = built.labels["layer2.1.conv2"]!
        built.graph.nodes[conv].setAttribute(.ints("strides", [2, 2]))
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasSuffix(
                "expected strides [1, 1] for layer2.1.conv2 (only the first block of a stage, the one with a downsample "
                    + "branch, changes the size), found [2, 2]"))
        #expect(error.description.hasPrefix("Conv node 'Conv_\(conv)'"))
    }

    @Test func downsampleWithStrideOneIsRejected() throws {
        var built = TinyIResNet().build()
        let conv = built.labels["layer3.0.downsample.0"]!
        built.graph.nodes[conv].setAttribute(.ints("strides", [1, 1]))
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasSuffix(
                "expected strides [2, 2] for layer3.0.downsample.0 (the downsample branch matches the stride-2 conv2), found [1, 1]"
            ))
    }

    @Test(arguments: [
        (TestAttribute.int("group", 2), "expected group 1 (a dense convolution), found group 2"),
        (.ints("dilations", [2, 2]), "expected dilations [1, 1], found [2, 2]"),
        (
            .ints("pads", [1, 1, 0, 0]),
            "expected pads [1, 1, 1, 1] for layer2.1.conv1, found [1, 1, 0, 0]"
        ),
        (
            .string("auto_pad", "SAME_UPPER"),
            "expected auto_pad NOTSET with explicit pads, found auto_pad SAME_UPPER"
        ),
        (.float("group", 1), "expected attribute 'group' to be an integer, found attribute type 1"),
    ])
    func badConvAttributeIsRejected(attribute: TestAttribute, message: String) throws {
        var built = TinyIResNet().build()
        let conv = built.labels["layer2.1.conv1"]!
        built.graph.nodes[conv].setAttribute(attribute)
        let error = try #require(conversionError(built.graph))
        #expect(error.description.hasPrefix("Conv node 'Conv_\(conv)'"))
        #expect(error.description.hasSuffix(message))
    }

    @Test func firstBlockWithoutDownsampleIsRejected() throws {
        var options = TinyIResNet()
        options.widths = [4, 4, 8, 8]
        var built = options.build()
        // Route layer1.0's shortcut around its downsample branch.
        let add = built.labels["layer1.0.add"]!
        let downsample = built.labels["layer1.0.downsample.0"]!
        built.graph.nodes[add].inputs[1] = built.graph.nodes[downsample].inputs[0]
        built.graph.nodes.remove(at: downsample)
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasSuffix(
                "expected Conv for layer1.0.downsample.0 (the first block of every stage has a downsample branch), found Add"
            ))
    }

    @Test func missingResidualAddIsRejected() throws {
        var built = TinyIResNet().build()
        let add = built.labels["layer2.1.add"]!
        let removed = built.graph.nodes.remove(at: add)
        for index in built.graph.nodes.indices {
            built.graph.nodes[index].inputs = built.graph.nodes[index].inputs.map {
                $0 == removed.output ? removed.inputs[0] : $0
            }
        }
        let bn1 = built.labels["layer2.1.bn1"]!
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description
                == "BatchNormalization node 'BatchNormalization_\(bn1)' (output '\(built.graph.nodes[bn1].output)') does not fit "
                + "an IResNet: expected the input of layer2.1 ('\(built.graph.nodes[bn1].inputs[0])') to feed its bn1 and its "
                + "shortcut, the residual Add or a downsample Conv, found only this BatchNormalization reading it, so the "
                + "block has no residual Add")
    }

    @Test func extraConsumerIsRejected() throws {
        var built = TinyIResNet().build()
        let prelu = built.labels["layer1.0.prelu"]!
        let output = built.graph.nodes[prelu].output
        built.graph.nodes.insert(
            TestNode(op: "Relu", name: "side", inputs: [output], outputs: ["side"]), at: prelu + 1)
        built.graph.outputs.append(TestValueInfo(name: "side"))
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasPrefix(
                "Relu node 'side' (output 'side') does not fit an IResNet: expected '\(output)' to feed only Conv for layer1.0.conv2, found another node reading it"
            ))
    }

    @Test func unusedNodeIsRejected() throws {
        var built = TinyIResNet().build()
        built.graph.nodes.append(
            TestNode(op: "Shape", name: "stray", inputs: ["conv1.weight"], outputs: ["stray"]))
        let error = try #require(conversionError(built.graph))
        #expect(error == .unusedNode(node: "Shape node 'stray' (output 'stray')"))
        #expect(
            error.description.hasSuffix(
                "is not on the IResNet's path from the graph input to the embedding; expected only IResNet nodes, plus Identity, Dropout and Constant"
            ))
    }

    @Test func mismatchedEpsilonIsRejected() throws {
        var built = TinyIResNet().build()
        let bn = built.labels["layer3.0.bn1"]!
        built.graph.nodes[bn].setAttribute(.float("epsilon", 1e-3))
        let error = try #require(conversionError(built.graph))
        let first = built.labels["layer1.0.bn1"]!
        #expect(
            error.description
                == "BatchNormalization node 'BatchNormalization_\(bn)' (output '\(built.graph.nodes[bn].output)') has epsilon 0.001, "
                + "expected 1e-05 like BatchNormalization node 'BatchNormalization_\(first)' (output '\(built.graph.nodes[first].output)'); "
                + "the weight file stores one epsilon for every batch norm")
    }

    @Test func threeStagesAreRejected() throws {
        var options = TinyIResNet()
        options.depths = [1, 1, 1, 0]
        let built = options.build()
        let bn2 = built.labels["bn2"]!
        let error = try #require(conversionError(built.graph))
        #expect(error.description.hasPrefix("BatchNormalization node 'BatchNormalization_\(bn2)'"))
        #expect(
            error.description.hasSuffix(
                "expected 4 stages before bn2, each starting with a downsample block, found 3 stages with [1, 1, 1] blocks"
            ))
    }

    @Test func twoDataInputsAreRejected() throws {
        var graph = TinyIResNet().build().graph
        graph.inputs.append(TestValueInfo(name: "extra", dims: [.value(1)]))
        let error = try #require(conversionError(graph))
        #expect(
            error.description
                == "the graph is not an IResNet: expected one graph input that is not an initializer, found 2: 'input', 'extra'"
        )
    }

    @Test func nonSquareInputIsRejected() throws {
        var graph = TinyIResNet().build().graph
        graph.inputs[0].dims = [.value(1), .value(3), .value(16), .value(32)]
        let error = try #require(conversionError(graph))
        #expect(
            error.description
                == "the graph is not an IResNet: graph input 'input' is 16x32 (H x W); expected a square input"
        )
    }

    @Test func fcInFeaturesMustMatchInputSize() throws {
        var graph = TinyIResNet().build().graph
        graph.inputs[0].dims = [.value(1), .value(3), .value(32), .value(32)]
        let error = try #require(conversionError(graph))
        #expect(
            error.description.hasSuffix(
                "expected 8 x 2 x 2 = 32 in-features for a 32x32 input, found 8"))
    }

    @Test func reshapeToOtherShapeIsRejected() throws {
        var options = TinyIResNet()
        options.flatten = .reshape([-1, -1])
        let error = try #require(conversionError(options.build().graph))
        #expect(
            error.description.hasSuffix(
                "expected a target shape [0, -1], [-1, K] or [N, K] that flattens C, H and W, found target shape [-1, -1]"
            ))
    }

    @Test func flattenOnOtherAxisIsRejected() throws {
        var options = TinyIResNet()
        options.flatten = .flatten(axis: 2)
        let error = try #require(conversionError(options.build().graph))
        #expect(
            error.description.hasSuffix(
                "expected axis 1 (flatten C, H and W of each image), found axis 2"))
    }

    @Test func gemmWithTransposedInputIsRejected() throws {
        var built = TinyIResNet().build()
        built.graph.nodes[built.labels["fc"]!].setAttribute(.int("transA", 1))
        let error = try #require(conversionError(built.graph))
        #expect(error.description.hasSuffix("expected transA 0, found transA 1"))
    }

    @Test func computedWeightIsRejected() throws {
        var built = TinyIResNet().build()
        let conv = built.labels["layer1.0.conv1"]!
        built.graph.nodes.insert(
            TestNode(
                op: "Neg", name: "negate", inputs: ["layer1.0.conv1.weight"], outputs: ["negated"]),
            at: 0)
        built.graph.nodes[conv + 1].inputs[1] = "negated"
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasSuffix(
                "expected input 1 ('negated'), the weight, to be an initializer or Constant, found a value computed in the graph"
            ))
    }

    @Test func dropoutInTrainingModeIsRejected() throws {
        let built = TinyIResNet().build()
        var graph = built.graph
        let flatten = built.labels["flatten"]!
        let flattenOutput = graph.nodes[flatten].output
        graph.initializers.append(
            TestTensor(name: "training", dims: [], dataType: 9, storage: .raw([1])))
        graph.nodes.insert(
            TestNode(
                op: "Dropout", name: "drop", inputs: [flattenOutput, "", "training"],
                outputs: ["dropped"]), at: flatten + 1)
        graph.nodes[flatten + 2].inputs[0] = "dropped"
        let error = try #require(conversionError(graph))
        #expect(
            error.description
                == "Dropout node 'drop' (output 'dropped') does not fit an IResNet: expected Dropout without a training_mode input, found training_mode input 'training'"
        )
    }

    @Test func nonFiniteWeightIsRejected() throws {
        var built = TinyIResNet().build()
        let weight = built.graph.initializers.firstIndex { $0.name == "layer1.0.conv1.bias" }!
        built.graph.initializers[weight] = .float(
            "layer1.0.conv1.bias", [4], [0, .nan, .infinity, 1])
        let conv = built.labels["layer1.0.conv1"]!
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description
                == "tensor 'layer1.0.conv1.bias' from Conv node 'Conv_\(conv)' (output '\(built.graph.nodes[conv].output)') has 2 NaN or infinite values"
        )
    }

    @Test func badTensorInNodeIsNamed() throws {
        var built = TinyIResNet().build()
        let weight = built.graph.initializers.firstIndex { $0.name == "layer1.0.conv1.weight" }!
        built.graph.initializers[weight].storage = .raw([0, 0, 0])
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description.hasSuffix(
                "input 'layer1.0.conv1.weight': tensor 'layer1.0.conv1.weight': raw_data has 3 bytes, expected 576 for its dims"
            ))
    }

    @Test func fiveInputChannelsAreRejected() throws {
        var built = TinyIResNet().build()
        let weight = built.graph.initializers.firstIndex { $0.name == "conv1.weight" }!
        built.graph.initializers[weight] = .float(
            "conv1.weight", [4, 5, 3, 3], [Float](repeating: 0.1, count: 180))
        built.graph.inputs[0].dims = [.value(1), .value(5), .value(16), .value(16)]
        let error = try #require(conversionError(built.graph))
        #expect(
            error.description
                == "invalid IResNet architecture: input channels must be between 1 and 4, found 5")
    }

    // MARK: Writing

    @Test func writtenFileLoadsWithMetadata() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let built = TinyIResNet().build()
        let converted = try convertGraph(built.graph)
        let url = folder.appendingPathComponent("tiny.safetensors")
        try converted.write(to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        let metadata = try WeightFileMetadata(dictionary: file.metadata, path: url.path)
        #expect(metadata == converted.metadata)
        #expect(file.entries.map(\.name).sorted() == converted.tensors.map(\.name).sorted())
        let weight = try #require(file.entry(named: "layer2.0.conv2.weight"))
        #expect(file.floats(for: weight) == built.expected["layer2.0.conv2.weight"])
    }

    @Test func failedConversionLeavesNoFile() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var built = TinyIResNet().build()
        built.graph.nodes[built.labels["layer2.0.prelu"]!].op = "Relu"
        let source = folder.appendingPathComponent("bad.onnx")
        try Data(built.graph.encoded).write(to: source)
        let output = folder.appendingPathComponent("bad.safetensors")
        #expect(throws: ConversionError.self) {
            try ONNXConverter.convert(modelAt: source, writingTo: output)
        }
        let contents = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(contents == ["bad.onnx"])
    }

    @Test func unwritableOutputIsReported() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("good.onnx")
        try Data(TinyIResNet().build().graph.encoded).write(to: source)
        let output = folder.appendingPathComponent("missing-folder/out.safetensors")
        let error = try #require(throws: ConversionError.self) {
            try ONNXConverter.convert(modelAt: source, writingTo: output)
        }
        guard case .unwritableOutput(.unwritable(let path, _)) = error else {
            Issue.record("expected unwritableOutput, found \(error)")
            return
        }
        #expect(path == output.path)
        #expect(error.description.hasPrefix("cannot write '\(output.path)': "))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["good.onnx"])
    }

    @Test func conversionToFileWritesIt() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("good.onnx")
        try Data(TinyIResNet().build().graph.encoded).write(to: source)
        let output = folder.appendingPathComponent("good.safetensors")
        let converted = try ONNXConverter.convert(modelAt: source, writingTo: output)
        #expect(converted.metadata.sourceFile == "good.onnx")
        let contents = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(contents == ["good.onnx", "good.safetensors"])
    }
}
