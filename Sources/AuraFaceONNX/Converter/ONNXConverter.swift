import AuraFace
import Foundation

/// Choices for readings the converter cannot make from the graph alone.
public struct ONNXConversionOptions: Sendable {
    /// Read a PRelu slope of shape `[C]` as one slope per channel.
    ///
    /// ONNX broadcasting aligns a 1-D slope with the last (width) axis of an `[N, C, H, W]`
    /// input, so by the standard such a graph is not per-channel, and the converter
    /// rejects it unless this is set. Some exporters write `[C]` and mean per-channel.
    public var preluSlopeIsPerChannel = false

    public init() {}
}

/// One tensor of a converted model, in PyTorch naming and layout.
public struct ConvertedTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    /// Row-major float32 values.
    public var values: [Float]
}

/// A layer of the converted network and the ONNX value that holds its output.
public struct ONNXLayerOutput: Sendable, Equatable {
    /// The layer's name as `AuraFaceModel.rawEmbeddings(graphInput:batchSize:observer:)`
    /// reports it, such as `layer1.0.bn2`.
    public var layer: String
    /// The name of the ONNX value (a node output) that equals the layer's output.
    public var value: String
}

/// The result of converting an ONNX IResNet: the weight file's metadata and tensors.
public struct ConvertedModel: Sendable {
    /// The architecture and provenance, as stored in `__metadata__`.
    public var metadata: WeightFileMetadata
    /// Exactly the tensors of `metadata.architecture.expectedTensors(foldedBatchNorms:)`, in that order.
    public var tensors: [ConvertedTensor]
    /// The origin of each tensor, one line per tensor or folded batch norm, such as
    /// `layer1.0.conv1.weight [64, 64, 3, 3] <- initializer 'onnx::Conv_511' of Conv node 'Conv_12' (output 'input.8')`.
    public var changeLog: [String]
    /// Every layer the engine's trace reports, in forward order, with the ONNX value that
    /// holds the same activation, for comparing intermediate outputs with onnxruntime.
    public var layerOutputs: [ONNXLayerOutput] = []

    /// Writes a safetensors file atomically: on any error no file is left at `url`, and an
    /// existing file there is unchanged.
    ///
    /// - Throws: `WeightFileError.unwritable` naming `url`.
    public func write(to url: URL) throws(WeightFileError) {
        var writer = SafeTensorsWriter()
        writer.metadata = metadata.dictionary
        for tensor in tensors {
            writer.add(name: tensor.name, shape: tensor.shape, values: tensor.values)
        }
        try writer.write(to: url)
    }
}

/// Converts an ONNX export of an arcface_torch IResNet, such as AuraFace's `glintr100.onnx`,
/// to the library's safetensors weights.
///
/// The converter recognizes the network by the graph's structure, never by node or tensor
/// names, so it reads exports from any depth and width of the family and from different
/// exporters. It accepts:
/// - Batch norms after a conv or fc folded into its bias, or kept as BatchNormalization
///   (a conv bias before a kept batch norm moves into its running mean). A conv or fc with
///   neither gets a zero bias and a conversion note.
/// - An input prelude of Sub, Mul, Add or Div by scalar or uniform per-channel constants,
///   recorded as `input_mean` and `input_scale`.
/// - Flatten, or Reshape to `[0, -1]`, `[-1, K]` or `[N, K]`; Gemm with either transB and any
///   alpha and beta, or MatMul with an optional Add.
/// - PRelu slopes of shape `[C, 1, 1]`, `[1, C, 1, 1]` or a single value; `[C]` only with
///   `ONNXConversionOptions.preluSlopeIsPerChannel`.
/// - Identity, Dropout and Constant nodes anywhere; opsets in `supportedOpsets`; weights in
///   `raw_data`, typed fields or external data files beside the model.
/// Anything else raises `ConversionError` naming the first node that does not fit.
public enum ONNXConverter {
    /// The standard opsets accepted. Opset 7 dropped the legacy `broadcast` attributes of
    /// Add and Gemm and the `is_test` attribute of BatchNormalization. Up to opset 21, the
    /// operators an IResNet uses keep their inference semantics, according to the operator
    /// schemas in onnx 1.23.2. They only gained element types, and inputs and attributes whose
    /// defaults keep the old behavior (Gemm's optional C, Reshape's allowzero,
    /// BatchNormalization's training_mode), which the converter checks.
    public static let supportedOpsets: ClosedRange<Int64> = 7...21

    /// Reads, decodes and converts the ONNX file at `url`.
    ///
    /// The file is read into memory once. `source_file` is its name and
    /// `source_sha256` the hash of its bytes (external data files are not hashed).
    ///
    /// - Throws: `ConversionError`.
    public static func convert(modelAt url: URL, options: ONNXConversionOptions = .init())
        throws(ConversionError)
        -> ConvertedModel
    {
        let model: ONNXModel
        do {
            model = try ONNXModel(contentsOf: url)
        } catch {
            throw .invalidModel(error)
        }
        return try convert(model, sourceFile: url.lastPathComponent, options: options)
    }

    /// Converts the ONNX file at `url` and writes the weights to `outputURL` atomically.
    ///
    /// On any error no file is left at `outputURL`, and a file already there is unchanged.
    ///
    /// - Throws: `ConversionError`, with `.unwritableOutput` when writing fails.
    @discardableResult
    public static func convert(
        modelAt url: URL, writingTo outputURL: URL, options: ONNXConversionOptions = .init()
    ) throws(ConversionError) -> ConvertedModel {
        let converted = try convert(modelAt: url, options: options)
        do {
            try converted.write(to: outputURL)
        } catch {
            throw .unwritableOutput(error)
        }
        return converted
    }

    /// Converts a decoded model. `sourceFile` becomes the metadata's `source_file`.
    ///
    /// - Throws: `ConversionError`.
    public static func convert(
        _ model: ONNXModel, sourceFile: String?, options: ONNXConversionOptions = .init()
    )
        throws(ConversionError) -> ConvertedModel
    {
        let opset = model.standardOpsetVersion
        guard let opset, supportedOpsets.contains(opset) else {
            throw .unsupportedOpset(found: opset, supported: supportedOpsets)
        }
        let index = try GraphIndex(graph: model.graph)
        var walker = IResNetGraphWalker(graph: index, options: options)
        let architecture = try walker.walk()

        var metadata = WeightFileMetadata(architecture: architecture)
        metadata.channelOrder = "RGB"
        metadata.inputMean = walker.inputMean
        metadata.inputScale = walker.inputScale
        metadata.inputNormalizationInGraph = walker.inputNormalizationInGraph
        metadata.batchNormEpsilon = walker.firstBatchNormEpsilon?.value ?? 1e-5
        metadata.foldedBatchNorms = architecture.batchNorms.map(\.name).filter {
            walker.foldedBatchNorms.contains($0)
        }
        metadata.sourceSHA256 = SHA256.hexDigest(of: model.storage.bytes)
        metadata.sourceFile = sourceFile
        metadata.onnxOpset = Int(opset)
        metadata.conversionNotes = walker.notes

        let expected = architecture.expectedTensors(
            foldedBatchNorms: Set(metadata.foldedBatchNorms))
        // The walk stores each tensor of the architecture under the name and shape that
        // expectedTensors gives, so a difference here is a bug in the walk, not in the file.
        precondition(
            expected.count == walker.tensors.count,
            "walk stored \(walker.tensors.count) tensors, expected \(expected.count)")
        let tensors = expected.map { entry -> ConvertedTensor in
            guard let tensor = walker.tensors[entry.name], tensor.shape == entry.shape else {
                preconditionFailure("walk did not store \(entry.name) with shape \(entry.shape)")
            }
            return ConvertedTensor(name: entry.name, shape: entry.shape, values: tensor.values)
        }
        // The writer stores float32 little-endian, the in-memory layout on every supported
        // platform, so these are the hashes of the bytes in the written file.
        metadata.tensorSHA256 = Dictionary(
            uniqueKeysWithValues: tensors.map { tensor in
                (tensor.name, tensor.values.withUnsafeBytes { SHA256.hexDigest(of: $0) })
            })
        return ConvertedModel(
            metadata: metadata, tensors: tensors, changeLog: walker.changeLog,
            layerOutputs: walker.layerOutputs)
    }
}
