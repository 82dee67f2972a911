// `auraface inspect`: per-layer shapes, parameters and FLOPs, the weight file's metadata and the
// BLAS kernels in use.

import AuraFace
import AuraFaceONNX
import Foundation

enum InspectCommand {
    static let spec = CommandSpec(
        name: "inspect",
        summary: "Print a model's layers, parameter and FLOP counts, metadata and BLAS setup.",
        usage: ["[--json] [--tensors] [--threads N] [--prelu-slope-per-channel] [--verbose] FILE"],
        discussion: """
            FILE is converted weights (.safetensors) or an ONNX model (.onnx), which is \
            converted in memory and not written. Each layer row gives its PyTorch module path, \
            type, output shape for one face, learnable parameters as PyTorch counts them (batch \
            norm running statistics are buffers, not parameters) and FLOPs for one face at the \
            model's input size (2 per multiply-add of convolutions and fc; element-wise layers \
            count 0). A batch norm that the exporter folded into the layer before it is marked \
            so. Full AuraFace (iresnet100) has about 65.2M parameters and 24.2 GFLOPs per face. \
            When the file's metadata records tensor_sha256, every tensor is hashed and checked \
            against it; a mismatch is listed and the exit status is 1, as it is when tensors are \
            missing, unexpected or of the wrong shape. --tensors adds each \
            stored tensor's min, max, mean, standard deviation, zero count and NaN and \
            infinity counts (min, max, mean and std over the finite values only). The file is \
            read without loading the model, so a file the loader rejects, such as one with NaN \
            weights, is still reported.
            """,
        positionals: [
            PositionalSpec(name: "FILE", help: "Converted weights (.safetensors) or an ONNX model (.onnx).")
        ],
        options: [
            .flag("json", "Print one JSON object instead of text."),
            .flag("tensors", "Also print statistics of every stored tensor."),
            .flag(
                "prelu-slope-per-channel",
                "For .onnx: read a PReLU slope stored as [C] as one slope per channel, as "
                    + "'auraface convert' does with this flag."),
            CommonOptions.threads,
            CommonOptions.verbose,
        ])

    static let command = Command(spec: spec, run: run)

    /// The facts `inspect` prints about one file.
    struct Report {
        var path: String
        var format: String
        var metadata: WeightFileMetadata
        /// Tensors and float values stored in the file (or in the converted model).
        var storedTensors: Int
        var storedValues: Int
        /// The comparison of the stored tensors with those the metadata's architecture needs.
        var tensorCheck: TensorCheck
        var rows: [LayerSummaryRow]
        var blas: Result<BLASInfo, BLASError>
        /// The `threadCount` a model loaded with the same --threads would have.
        var modelThreads: Int
        /// Per-tensor statistics, with --tensors.
        var tensorStatistics: [TensorStatisticsRow]?
        var hashCheck: TensorHashCheck = .notRecorded

        var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
        var totalFLOPs: Int { rows.reduce(0) { $0 + $1.flops } }
    }

    /// The differences between stored tensors and `IResNetArchitecture.expectedTensors`.
    struct TensorCheck {
        var expected: Int
        var missing: [String]
        var unexpected: [String]
        var wrongShape: [String]

        init(metadata: WeightFileMetadata, stored: [(name: String, shape: [Int])]) {
            let expectedTensors = metadata.architecture.expectedTensors(
                foldedBatchNorms: Set(metadata.foldedBatchNorms))
            let storedShapes = Dictionary(stored.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
            let expectedNames = Set(expectedTensors.map(\.name))
            expected = expectedTensors.count
            missing = expectedTensors.filter { storedShapes[$0.name] == nil }.map(\.name)
            wrongShape = expectedTensors.filter { tensor in
                storedShapes[tensor.name].map { $0 != tensor.shape } ?? false
            }.map(\.name)
            unexpected = stored.map(\.name).filter { !expectedNames.contains($0) }
        }

        /// True when the tensors are exactly those the architecture needs, with their shapes.
        var passed: Bool { missing.isEmpty && unexpected.isEmpty && wrongShape.isEmpty }

        var summary: String {
            if passed {
                return "all \(expected) tensors the architecture needs are present with the expected shapes"
            }
            var parts: [String] = []
            if let first = missing.first {
                parts.append("\(missing.count) of \(expected) missing (first: \(first))")
            }
            if let first = wrongShape.first {
                parts.append("\(wrongShape.count) with the wrong shape (first: \(first))")
            }
            if let first = unexpected.first {
                parts.append("\(unexpected.count) not part of the architecture (first: \(first))")
            }
            return parts.joined(separator: ", ") + "; the library refuses to load this file"
        }
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let url = URL(fileURLWithPath: arguments.positionals[0])
        let threads = try CommonOptions.threadCount(arguments)
        let verbose = arguments.flag("verbose")

        var report: Report
        if url.pathExtension.lowercased() == "onnx" {
            var options = ONNXConversionOptions()
            options.preluSlopeIsPerChannel = arguments.flag("prelu-slope-per-channel")
            if verbose {
                console.note("converting \(url.path) in memory")
            }
            let converted: ConvertedModel
            do {
                converted = try ONNXConverter.convert(modelAt: url, options: options)
            } catch {
                throw CommandFailure(converting: url, error)
            }
            report = makeReport(
                path: url.path, format: "ONNX, converted in memory", metadata: converted.metadata,
                tensors: converted.tensors.map { ($0.name, $0.shape) }, threads: threads)
            report.hashCheck = .convertedInMemory
            if arguments.flag("tensors") {
                report.tensorStatistics = converted.tensors.map {
                    TensorStatisticsRow(name: $0.name, shape: $0.shape, statistics: TensorStatistics($0.values))
                }
            }
        } else {
            let file = try SafeTensorsFile(contentsOf: url)
            let metadata = try WeightFileMetadata(dictionary: file.metadata, path: url.path)
            report = makeReport(
                path: url.path, format: "safetensors", metadata: metadata,
                tensors: file.entries.map { ($0.name, $0.shape) }, threads: threads)
            report.hashCheck = TensorHashCheck(file: file, recorded: metadata.tensorSHA256)
            if arguments.flag("tensors") {
                report.tensorStatistics = tensorStatistics(of: file)
            }
        }

        if arguments.flag("json") {
            try console.writeOutput(jsonReport(report))
        } else {
            try console.writeOutput(textReport(report))
        }
        if case let .mismatched(_, mismatches) = report.hashCheck {
            throw CommandFailure(
                "\(mismatches.count) tensors do not match the tensor_sha256 metadata (first: \(mismatches[0]))")
        }
        // The report is printed first either way. The exit status then tells a script that the
        // library would not load this file.
        if !report.tensorCheck.passed {
            throw CommandFailure("the tensors do not match the architecture: \(report.tensorCheck.summary)")
        }
    }

    static func makeReport(
        path: String, format: String, metadata: WeightFileMetadata,
        tensors: [(name: String, shape: [Int])], threads: Int?
    ) -> Report {
        let rows = AuraFaceModel.layerSummary(
            for: metadata.architecture, foldedBatchNorms: Set(metadata.foldedBatchNorms))
        // --threads is a model's thread budget; OpenBLAS's own pool stays at 1 thread.
        let blas: Result<BLASInfo, BLASError> = Result { () throws(BLASError) -> BLASInfo in
            try AuraFaceModel.blasInfo
        }
        return Report(
            path: path, format: format, metadata: metadata, storedTensors: tensors.count,
            storedValues: tensors.reduce(0) { $0 + $1.shape.reduce(1, *) },
            tensorCheck: TensorCheck(metadata: metadata, stored: tensors), rows: rows, blas: blas,
            modelThreads: threads ?? AuraFaceModel.defaultThreadCount)
    }

    // MARK: Text

    static func textReport(_ report: Report) -> String {
        let metadata = report.metadata
        let architecture = metadata.architecture
        let size = architecture.inputSize
        var lines = ["\(report.path) (\(report.format))", "", "Layers for one \(size)x\(size) face:"]
        lines += layerTable(report.rows)
        lines.append("")
        lines.append(
            "Total: \(grouped(report.totalParameters)) parameters (\(millions(report.totalParameters))), "
                + "\(grouped(report.totalFLOPs)) FLOPs (\(gigaFLOPs(report.totalFLOPs))) per face")
        lines.append(
            "Stored: \(report.storedTensors) tensors, \(grouped(report.storedValues)) float32 values "
                + "(folded batch norms leave only a bias on the layer before them)")
        lines.append("Tensor check: \(report.tensorCheck.summary)")
        lines += hashCheckLines(report.hashCheck)

        let foldable = architecture.batchNorms.filter { $0.follows != nil }.count
        var fields: [(String, String)] = [
            ("architecture", architecture.name),
            ("stage depths", "\(architecture.stageDepths)"),
            ("stage widths", "\(architecture.stageWidths)"),
            ("stem width", "\(architecture.stemWidth)"),
            ("embedding size", "\(architecture.embeddingSize)"),
            ("input", "[\(architecture.inputChannels), \(size), \(size)], channel order \(metadata.channelOrder)"),
            (
                "input mapping",
                "v -> (v - \(metadata.inputMean)) * \(metadata.inputScale)"
                    + (metadata.inputNormalizationInGraph ? ", done inside the source graph" : ", done before the source graph")
            ),
            ("batch norm epsilon", "\(metadata.batchNormEpsilon)"),
            (
                "folded batch norms",
                "\(metadata.foldedBatchNorms.count) of the \(foldable) that follow a convolution or fc "
                    + "(\(architecture.batchNorms.count) batch norms in all)"
            ),
            ("source sha256", metadata.sourceSHA256 ?? "not recorded"),
            ("source file", metadata.sourceFile ?? "not recorded"),
            ("ONNX opset", metadata.onnxOpset.map(String.init) ?? "not recorded"),
        ]
        if metadata.conversionNotes.isEmpty {
            fields.append(("conversion notes", "none"))
        } else {
            for (index, note) in metadata.conversionNotes.enumerated() {
                fields.append((index == 0 ? "conversion notes" : "", note))
            }
        }
        lines += ["", "Metadata:"] + alignedFields(fields)

        if let rows = report.tensorStatistics {
            lines += ["", "Tensors:"] + tensorStatisticsTable(rows)
        }

        lines += ["", "Threads: \(report.modelThreads) per model (--threads; default: the CPUs this process may use)"]
        lines += ["", "BLAS:"]
        switch report.blas {
        case let .success(info):
            lines += alignedFields([
                ("kernels", "\(info.coreName) (\(coreTypeSourceText(info)))"),
                ("threads", "\(info.threads) (OpenBLAS's own pool; each model splits its work over its threads)"),
                ("library", info.libraryPath),
                ("config", info.config),
            ])
        case let .failure(error):
            lines.append("  not available: \(AuraFaceCommandLine.oneLine(error))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func layerTable(_ rows: [LayerSummaryRow]) -> [String] {
        let header = ["layer", "kind", "output shape", "parameters", "FLOPs"]
        let cells = rows.map { row in
            [
                row.name,
                row.kind + (row.foldedInto.map { ", folded into \($0)" } ?? ""),
                "[" + row.outputShape.map(String.init).joined(separator: ", ") + "]",
                grouped(row.parameters),
                grouped(row.flops),
            ]
        }
        let widths = (0..<header.count).map { column in
            ([header] + cells).map { $0[column].count }.max() ?? 0
        }
        func line(_ values: [String]) -> String {
            var text = "  "
            for (column, value) in values.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - value.count)
                // Text columns align left, number columns right.
                text += column < 3 ? value + padding : padding + value
                if column < values.count - 1 {
                    text += "  "
                }
            }
            return text
        }
        return [line(header)] + cells.map(line)
    }

    static func alignedFields(_ fields: [(String, String)]) -> [String] {
        let width = (fields.map(\.0.count).max() ?? 0) + 2
        return fields.map { "  " + $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }
    }

    static func coreTypeSourceText(_ info: BLASInfo) -> String {
        switch info.coreTypeSource {
        case .userEnvironment:
            // Kernels other than the requested name mean OpenBLAS did not use the variable
            // (seen with OpenBLAS 0.3.21 and an unknown name), so it is not credited.
            if let requested = info.requestedCoreType,
                requested.caseInsensitiveCompare(info.coreName) != .orderedSame
            {
                "OPENBLAS_CORETYPE=\(requested) in the environment was not used: OpenBLAS does "
                    + "not know that name or this CPU cannot run it"
            } else {
                "from OPENBLAS_CORETYPE=\(info.requestedCoreType ?? "") in the environment"
            }
        case .selectedByAuraFace:
            "chosen by AuraFace from the CPU flags"
        case .detectedByOpenBLAS:
            "OpenBLAS's own CPU detection"
        case .alreadyLoaded:
            "OpenBLAS was already loaded by the process"
        }
    }

    /// 65155648 as "65,155,648".
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 {
                text.append(",")
            }
            text.append(digit)
        }
        return (value < 0 ? "-" : "") + text
    }

    static func millions(_ value: Int) -> String {
        String(format: "%.1fM", Double(value) / 1e6)
    }

    static func gigaFLOPs(_ value: Int) -> String {
        String(format: "%.1f GFLOPs", Double(value) / 1e9)
    }

    // MARK: JSON

    static func jsonReport(_ report: Report) -> String {
        let metadata = report.metadata
        let architecture = metadata.architecture
        var object: [String: Any] = [
            "file": report.path,
            "format": report.format,
            "layers": report.rows.map { row -> [String: Any] in
                var layer: [String: Any] = [
                    "name": row.name, "kind": row.kind, "output_shape": row.outputShape,
                    "parameters": row.parameters, "flops": row.flops,
                ]
                layer["folded_into"] = row.foldedInto
                return layer
            },
            "total_parameters": report.totalParameters,
            "total_flops": report.totalFLOPs,
            "stored_tensors": report.storedTensors,
            "stored_values": report.storedValues,

            "tensor_check": [
                "expected": report.tensorCheck.expected,
                "missing": report.tensorCheck.missing,
                "unexpected": report.tensorCheck.unexpected,
                "wrong_shape": report.tensorCheck.wrongShape,
            ] as [String: Any],
        ]

        var metadataObject: [String: Any] = [
            "architecture": architecture.name,
            "stage_depths": architecture.stageDepths,
            "stage_widths": architecture.stageWidths,
            "stem_width": architecture.stemWidth,
            "embedding_size": architecture.embeddingSize,
            "input_size": architecture.inputSize,
            "input_channels": architecture.inputChannels,
            "channel_order": metadata.channelOrder,
            // Through the shortest decimal text, so 0.0078431373 does not print as the Double
            // nearest the Float, 0.007843137718737125.
            "input_mean": Double("\(metadata.inputMean)") ?? 0,
            "input_scale": Double("\(metadata.inputScale)") ?? 0,
            "input_normalization_in_graph": metadata.inputNormalizationInGraph,
            "bn_epsilon": Double("\(metadata.batchNormEpsilon)") ?? 0,
            "folded_batch_norms": metadata.foldedBatchNorms,
            "conversion_notes": metadata.conversionNotes,
        ]
        metadataObject["source_sha256"] = metadata.sourceSHA256
        metadataObject["source_file"] = metadata.sourceFile
        metadataObject["onnx_opset"] = metadata.onnxOpset
        object["metadata"] = metadataObject
        object["tensor_hashes"] = hashCheckJSON(report.hashCheck)
        if let rows = report.tensorStatistics {
            object["tensors"] = rows.map(tensorStatisticsJSON)
        }

        object["model_threads"] = report.modelThreads
        switch report.blas {
        case let .success(info):
            var blas: [String: Any] = [
                "core_name": info.coreName, "threads": info.threads,
                "core_type_source": info.coreTypeSource.rawValue, "library_path": info.libraryPath,
                "config": info.config,
            ]
            blas["requested_core_type"] = info.requestedCoreType
            object["blas"] = blas
        case let .failure(error):
            object["blas_error"] = AuraFaceCommandLine.oneLine(error)
        }

        // The object contains only strings, numbers, booleans, arrays and dictionaries of them.
        let data = try! JSONSerialization.data(
            withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
