// `auraface trace`: every layer's output for one input tensor, as .npy files and a manifest.

import AuraFace
import Foundation

enum TraceCommand {
    static let spec = CommandSpec(
        name: "trace",
        summary: "Write every layer's output for an input tensor as .npy files, with a manifest.",
        usage: ["--model FILE --tensor X.npy --out DIR [--threads N] [--verbose]"],
        discussion: """
            Runs the network once on X.npy, the float32 [N, C, H, W] tensor the source ONNX \
            graph takes as input, and writes each layer's output to DIR/NAME.npy, where NAME \
            is the layer's PyTorch module path: conv1, bn1, prelu, then in each block \
            layerS.B.bn1, .conv1, .bn2, .prelu, .conv2, .bn3, in a stage's first block \
            .downsample.0 and .downsample, then the block sum layerS.B, and last bn2, fc and \
            features. A convolution or fc whose batch norm the exporter folded into its bias \
            has no file of its own: its output equals that batch norm's output and is written \
            under the batch norm's name. DIR/manifest.json lists the layers in forward order \
            with file, shape, min, max, mean and L2 norm, and the same table is printed. \
            'auraface convert --layer-map' gives the ONNX value that matches each layer. \
            DIR is created if missing; existing files of the same names are replaced.
            """,
        positionals: [],
        options: [
            CommonOptions.model,
            .value("tensor", "X.npy", "The graph input, float32 [N, C, H, W]. Required."),
            .value("out", "DIR", "The folder for the layer outputs and manifest.json. Required."),
            CommonOptions.threads,
            CommonOptions.verbose,
        ])

    static let command = Command(spec: spec, run: run)

    /// One line of the manifest.
    struct LayerRecord {
        var name: String
        var file: String
        var shape: [Int]
        var statistics: TensorStatistics
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let modelURL = try CommonOptions.modelURL(arguments, command: "trace")
        guard let tensorPath = arguments.value("tensor") else {
            throw UsageError("missing required option --tensor X.npy for 'auraface trace'; see 'auraface trace --help'")
        }
        guard let outPath = arguments.value("out") else {
            throw UsageError("missing required option --out DIR for 'auraface trace'; see 'auraface trace --help'")
        }
        let threads = try CommonOptions.threadCount(arguments)
        let verbose = arguments.flag("verbose")

        let tensorURL = URL(fileURLWithPath: tensorPath)
        let tensor = try NpyArray(contentsOf: tensorURL)
        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        let batchSize = try checkedBatchSize(tensor, path: tensorURL.path, architecture: model.architecture)

        let outURL = URL(fileURLWithPath: outPath, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure("cannot create the output folder '\(outURL.path)': \(error.localizedDescription)")
        }

        let records = try trace(model: model, input: tensor.values, batchSize: batchSize, into: outURL)
        let manifest = manifestJSON(records, model: modelURL.path, input: tensorURL.path, inputShape: tensor.shape)
        try writeFileAtomically(Array(manifest.utf8), to: outURL.appendingPathComponent("manifest.json"))

        for line in table(records) {
            try console.print(line)
        }
        if verbose {
            console.note("wrote \(records.count) layer outputs and manifest.json to \(outURL.path)")
        }
    }

    /// The batch size of `tensor`, which must be [N, C, H, W] with the model's C, H and W.
    static func checkedBatchSize(_ tensor: NpyArray, path: String, architecture: IResNetArchitecture) throws -> Int {
        let imageShape = [architecture.inputChannels, architecture.inputSize, architecture.inputSize]
        guard tensor.shape.count == 4, tensor.shape[0] >= 1, Array(tensor.shape[1...]) == imageShape else {
            throw CommandFailure(
                "'\(path)' has shape \(tensor.shape), expected [N, \(imageShape.map(String.init).joined(separator: ", "))] "
                    + "with N >= 1: the input the model's source ONNX graph takes, float32 NCHW")
        }
        return tensor.shape[0]
    }

    /// Runs the model with an observer that writes each layer's output to `folder` as soon as
    /// the layer has run, so at most one activation is held beyond the forward pass's own.
    static func trace(model: AuraFaceModel, input: [Float], batchSize: Int, into folder: URL) throws -> [LayerRecord] {
        var records: [LayerRecord] = []
        var writeError: (any Error)?
        _ = try model.rawEmbeddings(graphInput: input, batchSize: batchSize) { name, shape, values in
            // The observer cannot throw, so the first failure stops further writes and is
            // raised after the pass.
            guard writeError == nil else { return }
            let file = name + ".npy"
            do {
                try NpyArray(shape: shape, values: values).write(to: folder.appendingPathComponent(file))
            } catch {
                writeError = error
                return
            }
            records.append(LayerRecord(name: name, file: file, shape: shape, statistics: TensorStatistics(values)))
        }
        if let writeError {
            throw writeError
        }
        return records
    }

    static func table(_ records: [LayerRecord]) -> [String] {
        let rows = records.map { record in
            [
                record.name,
                "[" + record.shape.map(String.init).joined(separator: ", ") + "]",
                TensorStatistics.text(record.statistics.min),
                TensorStatistics.text(record.statistics.max),
                TensorStatistics.text(record.statistics.mean),
                TensorStatistics.text(record.statistics.l2Norm),
            ]
        }
        return alignedTable(header: ["layer", "shape", "min", "max", "mean", "L2 norm"], rows: rows, textColumns: 2)
    }

    static func manifestJSON(_ records: [LayerRecord], model: String, input: String, inputShape: [Int]) -> String {
        func number(_ value: Double?) -> String {
            // JSON has no NaN or infinity: a layer whose values are all non-finite gets null.
            guard let value, value.isFinite else { return "null" }
            return JSONText.number(value)
        }
        let layers = records.map { record in
            let statistics = record.statistics
            let fields = [
                "\"name\": \(JSONText.string(record.name))",
                "\"file\": \(JSONText.string(record.file))",
                "\"shape\": [\(record.shape.map(String.init).joined(separator: ", "))]",
                "\"min\": \(number(statistics.min))",
                "\"max\": \(number(statistics.max))",
                "\"mean\": \(number(statistics.mean))",
                "\"l2_norm\": \(number(statistics.l2Norm))",
                "\"non_finite\": \(statistics.nanCount + statistics.infiniteCount)",
            ]
            return "    {" + fields.joined(separator: ", ") + "}"
        }
        return """
            {
              "model": \(JSONText.string(model)),
              "input": \(JSONText.string(input)),
              "input_shape": [\(inputShape.map(String.init).joined(separator: ", "))],
              "layers": [
            \(layers.joined(separator: ",\n"))
              ]
            }

            """
    }
}
