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
            is left, and an existing file is only replaced by a complete one. The recorded \
            source_sha256 is the hash of MODEL.onnx alone, not of its external data files. \
            '-' is not accepted for OUT.safetensors or MAP.json. --layer-map \
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
        try OutputPath.rejectStandardOutput(arguments.positionals[1], option: "OUT.safetensors")
        guard !isSameFile(input, output) else {
            throw UsageError(
                "OUT.safetensors ('\(output.path)') is the same file as MODEL.onnx ('\(input.path)'); "
                    + "choose another output path")
        }
        let layerMap = try arguments.value("layer-map").map { path throws in
            try OutputPath.rejectStandardOutput(path, option: "--layer-map")
            return URL(fileURLWithPath: path)
        }
        if let layerMap {
            for (name, url) in [("MODEL.onnx", input), ("OUT.safetensors", output)] where isSameFile(layerMap, url) {
                throw UsageError(
                    "--layer-map '\(layerMap.path)' is the same file as \(name) ('\(url.path)'); "
                        + "choose another path for the layer map")
            }
        }
        try checkExternalData(of: input, against: [("OUT.safetensors", output)] + (layerMap.map { [("--layer-map", $0)] } ?? []))
        try OutputPath.checkFileDestination(output, option: "OUT.safetensors")
        if let layerMap {
            try OutputPath.checkFileDestination(layerMap, option: "--layer-map")
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
        // The layer map goes first: if writing the weights then fails, the map is removed, so
        // a failed command leaves neither file.
        if let layerMap {
            do {
                try writeLayerMap(converted.layerOutputs, to: layerMap)
            } catch {
                throw CommandFailure(
                    "cannot write --layer-map '\(layerMap.path)': \(describeFileError(error)); "
                        + "'\(output.path)' was not written")
            }
        }
        do {
            try converted.write(to: output)
        } catch {
            if let layerMap {
                try? FileManager.default.removeItem(at: layerMap)
            }
            throw error
        }

        let metadata = converted.metadata
        let parameters = AuraFaceModel.layerSummary(
            for: metadata.architecture, foldedBatchNorms: Set(metadata.foldedBatchNorms)
        ).reduce(0) { $0 + $1.parameters }
        try console.print(
            "converted \(metadata.architecture.name) (\(InspectCommand.millions(parameters)) parameters, "
                + "\(metadata.architecture.embeddingSize)-d embedding) to \(arguments.positionals[1]); "
                + "source sha256 \(metadata.sourceSHA256 ?? "not recorded")")
    }

    /// Rejects output paths that are external-data files of the model at `input`, which the
    /// conversion reads and the output would overwrite.
    ///
    /// A model that cannot be decoded is left to the converter, which reports why.
    static func checkExternalData(of input: URL, against outputs: [(option: String, url: URL)]) throws {
        guard let model = try? ONNXModel(contentsOf: input) else { return }
        let tensors = model.graph.initializers
            + model.graph.nodes.flatMap { node in node.attributes.compactMap(\.t) + node.attributes.flatMap(\.tensors) }
        var dataFiles: [URL] = []
        for tensor in tensors where tensor.dataLocation == ONNXTensor.externalDataLocation {
            if let location = tensor.externalData.first(where: { $0.key == "location" })?.value {
                let folder = tensor.externalDataDirectory ?? input.deletingLastPathComponent()
                dataFiles.append(folder.appendingPathComponent(location))
            }
        }
        for (option, url) in outputs {
            if let dataFile = dataFiles.first(where: { isSameFile($0, url) }) {
                throw UsageError(
                    "\(option) '\(url.path)' is the external data file '\(dataFile.path)' that "
                        + "MODEL.onnx ('\(input.path)') keeps its weights in; choose another output path")
            }
        }
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
