// `auraface convert`: an ONNX IResNet export to a safetensors weight file.

import AuraFace
import AuraFaceONNX
import Foundation

enum ConvertCommand {
    static let preluOption = OptionSpec.flag(
        "prelu-slope-per-channel",
        "Read a PReLU slope stored as [C] as one slope per channel. ONNX broadcasting would "
            + "apply a [C] slope along the width axis, so without this flag such a file is rejected.")

    static let spec = CommandSpec(
        name: "convert",
        summary: "Convert an ONNX IResNet (such as AuraFace's glintr100.onnx) to safetensors weights.",
        usage: ["[--prelu-slope-per-channel] [--layer-map MAP.json] [--verbose] MODEL.onnx OUT.safetensors"],
        discussion: """
            Reads the ONNX graph, checks that it is an ArcFace IResNet (conv stem, IBasicBlocks, \
            BatchNorm, Flatten, Gemm, BatchNorm), and writes its weights under PyTorch's \
            arcface_torch names with the architecture and input normalization in the metadata. \
            Prints one summary line. OUT.safetensors is written atomically: on failure no file \
            is left, and an existing file is only replaced by a complete one. --layer-map \
            writes a JSON array of {"layer", "onnx_value"} objects in forward order: for each \
            layer that 'auraface trace' writes, the ONNX value holding the same activation.
            """,
        positionals: [
            PositionalSpec(name: "MODEL.onnx", help: "The ONNX model to read."),
            PositionalSpec(name: "OUT.safetensors", help: "The weight file to write."),
        ],
        options: [
            preluOption,
            .value(
                "layer-map", "MAP.json",
                "Also write which ONNX value holds each traced layer's output, as JSON."),
            .flag("verbose", "Print the converter's note on each tensor to standard error."),
        ])

    static let command = Command(spec: spec, run: run)

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let input = URL(fileURLWithPath: arguments.positionals[0])
        let output = URL(fileURLWithPath: arguments.positionals[1])
        let verbose = arguments.flag("verbose")
        guard !isSameFile(input, output) else {
            throw UsageError(
                "OUT.safetensors ('\(output.path)') is the same file as MODEL.onnx ('\(input.path)'); "
                    + "choose another output path")
        }

        var options = ONNXConversionOptions()
        options.preluSlopeIsPerChannel = arguments.flag("prelu-slope-per-channel")
        let converted: ConvertedModel
        do {
            converted = try ONNXConverter.convert(modelAt: input, options: options)
        } catch {
            throw CommandFailure(converting: input, error)
        }
        if verbose {
            for note in converted.changeLog {
                console.note(note)
            }
        }
        try converted.write(to: output)
        if let mapPath = arguments.value("layer-map") {
            try writeLayerMap(converted.layerOutputs, to: URL(fileURLWithPath: mapPath))
        }

        let metadata = converted.metadata
        let parameters = AuraFaceModel.layerSummary(
            for: metadata.architecture, foldedBatchNorms: Set(metadata.foldedBatchNorms)
        ).reduce(0) { $0 + $1.parameters }
        console.print(
            "converted \(metadata.architecture.name) (\(InspectCommand.millions(parameters)) parameters, "
                + "\(metadata.architecture.embeddingSize)-d embedding) to \(arguments.positionals[1]); "
                + "source sha256 \(metadata.sourceSHA256 ?? "not recorded")")
    }

    static func writeLayerMap(_ layers: [ONNXLayerOutput], to url: URL) throws {
        let entries = layers.map { "  {\"layer\": \(JSONText.string($0.layer)), \"onnx_value\": \(JSONText.string($0.value))}" }
        let text = "[\n" + entries.joined(separator: ",\n") + "\n]\n"
        try writeFileAtomically(Array(text.utf8), to: url)
    }
}

extension CommandFailure {
    /// Wraps a conversion error so that its message names the ONNX file. Errors about one
    /// node or tensor do not know the file they came from.
    init(converting model: URL, _ error: ConversionError) {
        let message = error.description
        if message.contains("'\(model.path)'") {
            self.init(message)
        } else {
            self.init("'\(model.path)': \(message)")
        }
    }
}
