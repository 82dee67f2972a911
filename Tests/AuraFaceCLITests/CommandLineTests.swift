// End-to-end runs of the auraface subcommands, in-process through AuraFaceCommandLine.run, on
// the ONNX fixtures of Tests/Fixtures (synthetic weights; see Tests/Fixtures/README.md).

import AuraFace
import Foundation
import Testing

@testable import AuraFaceCLI

/// The result of one command line.
struct CommandResult {
    var status: Int32
    var output: String
    var error: String

    /// The error output's lines, without the final line break.
    var errorLines: [Substring] { error.split(separator: "\n", omittingEmptySubsequences: false).dropLast() }
}

/// Collects what a command writes to each stream.
final class CapturedStreams {
    var output = ""
    var error = ""
}

func runCommandLine(_ arguments: [String]) -> CommandResult {
    let streams = CapturedStreams()
    let console = Console(writeOutput: { streams.output += $0 }, writeError: { streams.error += $0 })
    let status = AuraFaceCommandLine.run(arguments, console: console)
    return CommandResult(status: status, output: streams.output, error: streams.error)
}

let fixturesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

func fixture(_ relativePath: String) -> String {
    fixturesDirectory.appendingPathComponent(relativePath).path
}

/// Creates a fresh directory under the system temporary directory. The caller removes it.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "auraface-cli-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Converts the parity fixture `name` (by default r18: stem 8, widths [8, 16, 32, 64],
/// embedding 64) into `directory` with the convert command and returns the weight file's path.
func convertParityModel(_ name: String = "r18", into directory: URL) throws -> String {
    let output = directory.appendingPathComponent("\(name).safetensors").path
    let result = runCommandLine(["convert", fixture("parity/\(name).onnx"), output])
    try #require(result.status == 0, "convert failed: \(result.error)")
    return output
}

func maxAbsoluteDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Writes deterministic random face crops as PNG and returns their paths.
func writeFaceCrops(count: Int, size: Int, into directory: URL, seed: UInt64) throws -> [String] {
    var state = seed
    func nextByte() -> UInt8 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
    return try (0..<count).map { index in
        let url = directory.appendingPathComponent("face\(index).png")
        let image = try RGBImage(width: size, height: size, pixels: (0..<(size * size * 3)).map { _ in nextByte() })
        try PNGImage.write(image, to: url)
        return url.path
    }
}

@Suite("Command line")
struct CommandLineTests {
    @Test func versionPrintsProgramAndFormat() {
        let result = runCommandLine(["--version"])

        #expect(result.status == 0)
        #expect(result.output == "auraface \(AuraFaceCommandLine.version) (weight format auraface-iresnet version 1)\n")
        #expect(result.error.isEmpty)
    }

    @Test func topLevelHelpListsCommands() {
        let result = runCommandLine(["--help"])

        #expect(result.status == 0)
        for command in ["convert", "inspect", "embed", "compare"] {
            #expect(result.output.contains("\n  \(command) "), "\(command)")
        }
    }

    @Test func commandHelpExitsZero() {
        for command in ["convert", "inspect", "embed", "compare"] {
            let result = runCommandLine([command, "--help"])
            #expect(result.status == 0, "\(command)")
            #expect(result.output.hasPrefix("Usage: auraface \(command) "), "\(command)")
            #expect(result.error.isEmpty, "\(command)")
        }
        #expect(runCommandLine(["help", "embed"]).output.contains("--tensor X.npy"))
    }

    @Test("usage errors print one line and exit 2", arguments: [
        [],
        ["frobnicate"],
        ["--frobnicate"],
        ["embed", "a.png"],
        ["embed", "--model", "m.safetensors"],
        ["embed", "--model", "m.safetensors", "--tensor", "x.npy"],
        ["embed", "--model", "m.safetensors", "--raw", "a.png"],
        ["embed", "--model", "m.safetensors", "--tensor", "x.npy", "--output", "e.npy", "a.png"],
        ["embed", "--model", "m.safetensors", "--threads", "0", "a.png"],
        ["embed", "--model", "m.safetensors", "--batch-size", "many", "a.png"],
        ["compare", "--model", "m.safetensors", "a.png"],
        ["compare", "--model", "m.safetensors", "a.png", "b.png", "c.png"],
        ["convert", "model.onnx"],
        ["convert", "same.onnx", "same.onnx"],
        ["embed", "--model", "m.safetensors", "--tensor", "x.npy", "--output", "./x.npy"],
        ["embed", "--model", "", "a.png"],
        ["convert", "model.onnx", ""],
        ["inspect", ""],
        ["embed", "--model", "m.safetensors", "--tensor", "x.npy", "--output", "m.safetensors"],
        ["inspect", "--json=yes", "x.safetensors"],
    ])
    func usageErrorIsOneLine(_ arguments: [String]) {
        let result = runCommandLine(arguments)

        #expect(result.status == 2)
        #expect(result.output.isEmpty)
        #expect(result.errorLines.count == 1)
        #expect(result.error.hasPrefix("auraface: error: "))
    }

    @Test func convertOverLinkedSourceIsRejected() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("model.onnx")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: fixture("parity/r18.onnx")), to: source)
        let original = try Data(contentsOf: source)
        let symbolicLink = directory.appendingPathComponent("link.onnx")
        try FileManager.default.createSymbolicLink(at: symbolicLink, withDestinationURL: source)
        let hardLink = directory.appendingPathComponent("hard.safetensors")
        try FileManager.default.linkItem(at: source, to: hardLink)

        let throughSymbolicLink = runCommandLine(["convert", symbolicLink.path, source.path])
        let throughHardLink = runCommandLine(["convert", source.path, hardLink.path])

        #expect(throughSymbolicLink.status == 2)
        #expect(throughSymbolicLink.errorLines.count == 1)
        #expect(throughHardLink.status == 2)
        #expect(try Data(contentsOf: source) == original)
        #expect(try Data(contentsOf: hardLink) == original)
    }

    @Test func controlCharactersFromInputAreEscaped() {
        // A path or a name from a file holding ESC and an ASCII record separator (0x1E).
        let result = runCommandLine(["inspect", "/nonexistent/\u{1B}[31mred\u{1E}name.onnx"])

        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(!result.error.dropLast().unicodeScalars.contains { $0.properties.generalCategory == .control })
        #expect(result.error.contains("\\u{1B}[31mred\\u{1E}name.onnx"))
    }

    @Test func missingFilesAreRuntimeErrors() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing").path
        let cases: [[String]] = [
            ["embed", "--model", missing + ".safetensors", "a.png"],
            ["inspect", missing + ".safetensors"],
            ["inspect", missing + ".onnx"],
            ["convert", missing + ".onnx", missing + ".safetensors"],
        ]
        for arguments in cases {
            let result = runCommandLine(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.errorLines.count == 1, "\(arguments): \(result.error)")
            #expect(result.error.contains(missing), "\(arguments): \(result.error)")
        }
    }

    @Test func convertPrintsSummaryAndWritesFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("r18.safetensors").path

        let result = runCommandLine(["convert", "--verbose", fixture("parity/r18.onnx"), output])

        #expect(result.status == 0)
        let lines = result.output.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(result.output.hasPrefix("converted iresnet18 (0.4M parameters, 64-d embedding) to \(output); source sha256 "))
        let digest = result.output.split(separator: " ").last.map { $0.trimmingCharacters(in: .newlines) } ?? ""
        #expect(digest.count == 64, "\(digest)")
        #expect(digest.allSatisfy { $0.isHexDigit }, "\(digest)")
        // --verbose prints one converter note per tensor or folded batch norm.
        #expect(result.errorLines.count >= 93, "\(result.errorLines.count) notes")
        #expect(result.errorLines.allSatisfy { $0.hasPrefix("auraface: ") })
        let model = try AuraFaceModel(contentsOf: URL(fileURLWithPath: output))
        #expect(model.architecture.stageWidths == [8, 16, 32, 64])
    }

    @Test func failedConvertLeavesNoFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fresh = directory.appendingPathComponent("fresh.safetensors")
        let existing = directory.appendingPathComponent("existing.safetensors")
        try Data("previous contents".utf8).write(to: existing)

        for output in [fresh, existing] {
            let result = runCommandLine(["convert", fixture("converter/bad-relu-in-block.onnx"), output.path])
            #expect(result.status == 1)
            #expect(result.errorLines.count == 1)
            #expect(result.error.contains("Relu"))
        }

        #expect(!FileManager.default.fileExists(atPath: fresh.path))
        #expect(try String(contentsOf: existing, encoding: .utf8) == "previous contents")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["existing.safetensors"])
    }

    /// The raw output must match onnxruntime's for the same graph input; the normalized output
    /// must be the raw output over its norm.
    @Test("tensor embedding matches onnxruntime", arguments: ["r18", "r18-mxnet-unfolded"])
    func tensorEmbeddingMatchesONNXRuntime(_ name: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(name, into: directory)
        let rawURL = directory.appendingPathComponent("raw.npy")
        let normalizedURL = directory.appendingPathComponent("normalized.npy")
        let input = fixture("parity/\(name).input.npy")

        let raw = runCommandLine(["embed", "--model", model, "--tensor", input, "--output", rawURL.path, "--raw"])
        let normalized = runCommandLine([
            "embed", "--model", model, "--tensor", input, "--output", normalizedURL.path, "--batch-size", "2",
        ])

        #expect(raw.status == 0, "\(raw.error)")
        #expect(normalized.status == 0, "\(normalized.error)")
        #expect(raw.output.isEmpty)
        #expect(raw.error.isEmpty)
        let expected = try NpyArray(contentsOf: URL(fileURLWithPath: fixture("parity/\(name).expected.npy")))
        let rawEmbeddings = try NpyArray(contentsOf: rawURL)
        let normalizedEmbeddings = try NpyArray(contentsOf: normalizedURL)
        #expect(rawEmbeddings.shape == expected.shape)
        let scale = expected.values.map(abs).max() ?? 1
        let difference = maxAbsoluteDifference(rawEmbeddings.values, expected.values)
        #expect(difference <= 1e-4 * scale, "max |difference| \(difference), max |expected| \(scale)")

        let width = expected.shape[1]
        for row in 0..<expected.shape[0] {
            let rawRow = Array(rawEmbeddings.values[(row * width)..<((row + 1) * width)])
            let normalizedRow = Array(normalizedEmbeddings.values[(row * width)..<((row + 1) * width)])
            let norm = Float(l2Norm(rawRow))
            #expect(abs(Float(l2Norm(normalizedRow)) - 1) < 1e-5, "row \(row)")
            #expect(maxAbsoluteDifference(normalizedRow, rawRow.map { $0 / norm }) < 1e-5, "row \(row)")
        }
    }

    @Test func tensorShapeMismatchNamesBothShapes() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let input = directory.appendingPathComponent("x.npy")
        let output = directory.appendingPathComponent("e.npy")
        try NpyArray(shape: [2, 3, 64, 64], values: [Float](repeating: 0, count: 2 * 3 * 64 * 64)).write(to: input)

        let result = runCommandLine(["embed", "--model", model, "--tensor", input.path, "--output", output.path])

        #expect(result.status == 1)
        #expect(result.error.contains("has shape [2, 3, 64, 64], expected [N, 3, 112, 112]"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test func imageEmbeddingMatchesTensorPath() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let modelPath = try convertParityModel(into: directory)
        let images = try writeFaceCrops(count: 3, size: 112, into: directory, seed: 5)

        // Batch size 2 splits the three images over two forward passes.
        let result = runCommandLine(["embed", "--model", modelPath, "--batch-size", "2"] + images)
        try #require(result.status == 0, "\(result.error)")

        let model = try AuraFaceModel(contentsOf: URL(fileURLWithPath: modelPath))
        let input = try RGBImage.normalizedBatch(
            images.map { try PNGImage.read(contentsOf: URL(fileURLWithPath: $0)) }, metadata: model.metadata)
        let expected = try model.rawEmbeddings(normalizedInput: input, batchSize: 3)
        let lines = result.output.split(separator: "\n")
        #expect(lines.count == 3)
        for (index, line) in lines.enumerated() {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "line \(index)")
            let embedding = try #require(object["embedding"] as? [NSNumber]).map { $0.floatValue }
            let norm = try #require(object["norm"] as? NSNumber).doubleValue
            #expect(object["file"] as? String == images[index])
            #expect(Set(object.keys) == ["file", "embedding", "norm"])
            #expect(abs(norm - l2Norm(expected[index])) < 1e-4 * norm, "line \(index)")
            #expect(abs(l2Norm(embedding) - 1) < 1e-5, "line \(index)")
            let reference = try AuraFaceModel.l2Normalized(expected[index])
            #expect(maxAbsoluteDifference(embedding, reference) < 1e-5, "line \(index)")
        }
    }

    @Test func wrongImageSizeNamesFileAndSize() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let good = try writeFaceCrops(count: 1, size: 112, into: directory, seed: 1)[0]
        let small = directory.appendingPathComponent("small.png")
        try PNGImage.write(RGBImage(width: 96, height: 80, pixels: [UInt8](repeating: 9, count: 96 * 80 * 3)), to: small)

        let result = runCommandLine(["embed", "--model", model, good, small.path])

        #expect(result.status == 1)
        // Images are checked before any inference, so the good image produces no partial output.
        #expect(result.output.isEmpty)
        #expect(result.errorLines.count == 1)
        #expect(result.error.contains("'\(small.path)': image is 96x80 pixels"), "\(result.error)")
        #expect(result.error.contains("112x112"), "\(result.error)")
    }

    @Test func ppmCropEmbedsLikePNGCrop() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let png = try writeFaceCrops(count: 1, size: 112, into: directory, seed: 4)[0]
        let image = try PNGImage.read(contentsOf: URL(fileURLWithPath: png))
        let ppm = directory.appendingPathComponent("face.ppm")
        try Data(Array("P6\n112 112\n255\n".utf8) + image.pixels).write(to: ppm)

        let fromPNG = runCommandLine(["embed", "--model", model, png])
        let fromPPM = runCommandLine(["embed", "--model", model, ppm.path])
        let compared = runCommandLine(["compare", "--model", model, png, ppm.path])

        #expect(fromPPM.status == 0, "\(fromPPM.error)")
        #expect(compared.status == 0, "\(compared.error)")
        let embedding = { (result: CommandResult) in
            result.output.split(separator: ",", maxSplits: 1).last.map(String.init)
        }
        #expect(embedding(fromPPM) != nil)
        #expect(embedding(fromPPM) == embedding(fromPNG))
        #expect(abs((Float(compared.output.trimmingCharacters(in: .newlines)) ?? 0) - 1) < 1e-5, "\(compared.output)")
    }

    @Test func compareMatchesEmbeddingDotProduct() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let images = try writeFaceCrops(count: 2, size: 112, into: directory, seed: 9)

        let same = runCommandLine(["compare", "--model", model, images[0], images[0]])
        let different = runCommandLine(["compare", "--model", model, "--verbose", "--threads", "1"] + images)
        let embedded = runCommandLine(["embed", "--model", model] + images)

        #expect(same.status == 0)
        #expect(abs((Float(same.output.trimmingCharacters(in: .newlines)) ?? 0) - 1) < 1e-5, "\(same.output)")
        #expect(different.status == 0)
        let cosine = try #require(Float(different.output.trimmingCharacters(in: .newlines)), "\(different.output)")
        let embeddings = try embedded.output.split(separator: "\n").map { line in
            try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["embedding"] as? [NSNumber])
                .map { $0.floatValue }
        }
        let dot = zip(embeddings[0], embeddings[1]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        #expect(abs(cosine - dot) < 1e-5, "compare \(cosine), dot of embed output \(dot)")
        #expect(cosine < 0.9999, "two different random images should not be identical")
        // --verbose adds the two raw norms on standard error.
        #expect(different.error.contains("raw embedding norm of \(images[0]): "))
        #expect(different.error.contains("raw embedding norm of \(images[1]): "))
    }

    @Test func inspectFullR100ShowsTotals() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Metadata alone: inspect reads no weights, so the full-size network's counts need no
        // 261 MB file. The tensor check reports every tensor as missing, so the report is
        // printed in full and the exit status is 1.
        var metadata = WeightFileMetadata(architecture: .r100)
        metadata.foldedBatchNorms = IResNetArchitecture.r100.batchNorms.filter { $0.follows != nil && $0.name != "features" }.map(\.name)
        var writer = SafeTensorsWriter()
        writer.metadata = metadata.dictionary
        let url = directory.appendingPathComponent("r100-metadata-only.safetensors")
        try writer.write(to: url)

        let text = runCommandLine(["inspect", url.path])
        let json = runCommandLine(["inspect", "--json", url.path])

        #expect(text.status == 1)
        #expect(text.error.contains("the tensors do not match the architecture: "), "\(text.error)")
        #expect(text.output.contains("(65.2M), "), "\(text.output.suffix(2000))")
        #expect(text.output.contains("(24.2 GFLOPs) per face"))
        #expect(text.output.contains("  stage depths        [3, 13, 30, 3]"))
        #expect(text.output.contains("  folded batch norms  "))
        let expectedCount = IResNetArchitecture.r100.expectedTensors(
            foldedBatchNorms: Set(metadata.foldedBatchNorms)).count
        #expect(text.output.contains("Tensor check: \(expectedCount) of \(expectedCount) missing (first: conv1.weight)"))
        #expect(text.output.contains("\nBLAS:\n"))
        #expect(text.output.contains("  layer3.29.conv2 "))

        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let layers = try #require(object["layers"] as? [[String: Any]])
        let totalParameters = try #require(object["total_parameters"] as? Int)
        let totalFLOPs = try #require(object["total_flops"] as? Int)
        #expect(layers.reduce(0) { $0 + ($1["parameters"] as? Int ?? 0) } == totalParameters)
        #expect(layers.reduce(0) { $0 + ($1["flops"] as? Int ?? 0) } == totalFLOPs)
        #expect((65_150_000...65_250_000).contains(totalParameters), "\(totalParameters)")
        #expect((24_150_000_000...24_250_000_000).contains(totalFLOPs), "\(totalFLOPs)")
        let metadataObject = try #require(object["metadata"] as? [String: Any])
        #expect(metadataObject["stage_depths"] as? [Int] == [3, 13, 30, 3])
        #expect(metadataObject["input_mean"] as? Double == 127.5)
    }

    @Test func inspectConvertsONNXInMemory() throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: fixture("converter"))
        let result = runCommandLine(["inspect", fixture("converter/r100-torch-folded.onnx")])

        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("(ONNX, converted in memory)"))
        #expect(result.output.contains("  architecture        iresnet100"))
        #expect(result.output.contains("Tensor check: all "))
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture("converter")) == before)
    }
}
