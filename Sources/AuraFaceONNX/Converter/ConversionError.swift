import AuraFace

/// Why an ONNX file could not be converted to an IResNet weight file.
///
/// Errors about the graph name the first node that does not fit the IResNet, in forward
/// order from the graph input. A node is named by its name if it has one, otherwise by its
/// op type and index in `GraphProto.node`, and always with its first output.
public enum ConversionError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read or decoded.
    case invalidModel(ONNXError)
    /// The model imports no standard operator set, or one outside `supported`.
    case unsupportedOpset(found: Int64?, supported: ClosedRange<Int64>)
    /// The graph's inputs or outputs do not fit: several data inputs, a non-square input,
    /// or a value produced twice.
    case invalidGraph(reason: String)
    /// A node is not what the IResNet needs at its place.
    case unexpectedNode(node: String, expected: String, found: String)
    /// A constant input of a node could not be read.
    case invalidTensor(node: String, input: String, ONNXError)
    /// A PRelu slope of shape `[C]`, which ONNX broadcasting applies along the width axis.
    case ambiguousPReluSlope(node: String, module: String, shape: [Int])
    /// A batch norm whose epsilon differs from the first one's.
    case inconsistentBatchNormEpsilon(
        node: String, expected: Float, firstNode: String, found: Float)
    /// A node off the path from the graph input to the embedding.
    case unusedNode(node: String)
    /// A weight with NaN or infinite values.
    case nonFiniteValues(tensor: String, node: String, count: Int)
    /// The hyperparameters read from the graph do not describe a buildable IResNet.
    case invalidArchitecture(WeightFileError)
    /// The converted weights could not be written.
    case unwritableOutput(WeightFileError)

    public var description: String {
        switch self {
        case let .invalidModel(error):
            "\(error)"
        case let .unsupportedOpset(found?, supported):
            "the model uses opset \(found); expected an opset from \(supported.lowerBound) to \(supported.upperBound)"
        case let .unsupportedOpset(nil, supported):
            "the model imports no standard ONNX opset; expected an opset from \(supported.lowerBound) to \(supported.upperBound)"
        case let .invalidGraph(reason):
            "the graph is not an IResNet: \(reason)"
        case let .unexpectedNode(node, expected, found):
            "\(node) does not fit an IResNet: expected \(expected), found \(found)"
        case let .invalidTensor(node, input, error):
            "\(node), input '\(input)': \(error)"
        case let .ambiguousPReluSlope(node, module, shape):
            "\(node), read as \(module), has a slope of shape \(shape). ONNX broadcasting aligns a 1-D slope with the width axis "
                + "of the [N, C, H, W] input, so it is not per-channel; expected [C, 1, 1] or [1, C, 1, 1]. "
                + "If the exporter meant one slope per channel, set ONNXConversionOptions.preluSlopeIsPerChannel "
                + "(the CLI's --prelu-slope-per-channel)"
        case let .inconsistentBatchNormEpsilon(node, expected, firstNode, found):
            "\(node) has epsilon \(found), expected \(expected) like \(firstNode); "
                + "the weight file stores one epsilon for every batch norm"
        case let .unusedNode(node):
            "\(node) is not on the IResNet's path from the graph input to the embedding; "
                + "expected only IResNet nodes, plus Identity, Dropout and Constant"
        case let .nonFiniteValues(tensor, node, count):
            "tensor '\(tensor)' from \(node) has \(count) NaN or infinite values"
        case let .invalidArchitecture(error):
            "\(error)"
        case let .unwritableOutput(error):
            "\(error)"
        }
    }
}
