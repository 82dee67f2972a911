import AuraFace
import AuraFaceONNX
import Foundation
import Testing

/// The facts `Tools/make_test_graphs.py` records for a fixture, which a correct conversion
/// must find. Tests/Fixtures/README.md lists the keys.
struct FixtureExpectation: Decodable {
    struct ExpectedError: Decodable {
        var kind: String
        var module: String
        var acceptedWithFlag: Bool?
    }

    var architecture: String
    var stageDepths: [Int]
    var stageWidths: [Int]
    var stemWidth: Int
    var embeddingSize: Int
    var inputSize: Int
    var inputChannels: Int
    var inputMean: Double
    var inputScale: Double
    var inputNormalizationInGraph: Bool
    var bnEpsilon: Double
    var opset: Int
    var foldedBatchNorms: [String]
    var fixedBatchSize: Int?
    var seed: Int
    var expectedError: ExpectedError?
}

/// One tensor's entry in a `.tensors.json` file.
struct FixtureTensorSummary: Decodable {
    var shape: [Int]
    var sum: Double
    var first: [Double]
}

enum ConverterFixtures {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/converter")

    /// Every fixture name with an `.expected.json`, such as `r18-torch-folded`.
    static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(".expected.json") }.map {
            String($0.dropLast(".expected.json".count))
        }.sorted()
    }

    static func expectation(_ name: String) throws -> FixtureExpectation {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let data = try Data(contentsOf: folder.appendingPathComponent("\(name).expected.json"))
        return try decoder.decode(FixtureExpectation.self, from: data)
    }

    /// Reads the tensor summaries of a `.tensors.json` file, in file order.
    static func tensorSummaries(_ name: String) throws -> [(
        name: String, summary: FixtureTensorSummary
    )] {
        let data = try Data(contentsOf: folder.appendingPathComponent("\(name).tensors.json"))
        let summaries = try JSONDecoder().decode([String: FixtureTensorSummary].self, from: data)
        // JSONDecoder drops the key order, so recover it from the text.
        let text = String(decoding: data, as: UTF8.self)
        let ordered = summaries.keys.sorted {
            text.range(of: "\"\($0)\"")!.lowerBound < text.range(of: "\"\($1)\"")!.lowerBound
        }
        return ordered.map { ($0, summaries[$0]!) }
    }

    static func url(_ name: String) -> URL {
        folder.appendingPathComponent("\(name).onnx")
    }
}

@Suite struct ConverterFixtureTests {
    @Test func fixturesArePresent() {
        #expect(ConverterFixtures.names.count >= 20, "fixtures in \(ConverterFixtures.folder.path)")
    }

    @Test(arguments: ConverterFixtures.names)
    func fixtureConvertsAsExpected(name: String) throws {
        let expected = try ConverterFixtures.expectation(name)
        if let expectedError = expected.expectedError {
            try checkRejection(name, expected: expectedError)
            guard expectedError.acceptedWithFlag == true else { return }
        }
        var options = ONNXConversionOptions()
        options.preluSlopeIsPerChannel = expected.expectedError?.acceptedWithFlag == true
        let converted = try ONNXConverter.convert(
            modelAt: ConverterFixtures.url(name), options: options)
        let metadata = converted.metadata
        let architecture = metadata.architecture
        #expect(architecture.name == expected.architecture)
        #expect(architecture.stageDepths == expected.stageDepths)
        #expect(architecture.stageWidths == expected.stageWidths)
        #expect(architecture.stemWidth == expected.stemWidth)
        #expect(architecture.embeddingSize == expected.embeddingSize)
        #expect(architecture.inputSize == expected.inputSize)
        #expect(architecture.inputChannels == expected.inputChannels)
        #expect(metadata.inputNormalizationInGraph == expected.inputNormalizationInGraph)
        #expect(Double(metadata.inputMean) == expected.inputMean)
        // A graph without a prelude carries no scale: the converter records arcface_torch's
        // training mapping, (v - 127.5) / 127.5, and the fixture expects the same. The JSON
        // value is a double, the metadata a float.
        #expect(abs(Double(metadata.inputScale) - expected.inputScale) <= 1e-7 * expected.inputScale)
        #expect(metadata.batchNormEpsilon == Float(expected.bnEpsilon))
        #expect(metadata.onnxOpset == expected.opset)
        #expect(metadata.foldedBatchNorms == expected.foldedBatchNorms)
        #expect(metadata.sourceFile == "\(name).onnx")
        #expect(metadata.channelOrder == "RGB")
        let pinned = metadata.conversionNotes.contains { $0.contains("fixes the batch size to 1") }
        #expect(pinned == (expected.fixedBatchSize == 1))

        let layout = architecture.expectedTensors(foldedBatchNorms: Set(metadata.foldedBatchNorms))
        #expect(converted.tensors.map(\.name) == layout.map(\.name))
        #expect(converted.tensors.map(\.shape) == layout.map(\.shape))
    }

    private func checkRejection(_ name: String, expected: FixtureExpectation.ExpectedError) throws {
        do {
            _ = try ONNXConverter.convert(modelAt: ConverterFixtures.url(name))
            Issue.record("\(name) converted, expected \(expected.kind) at \(expected.module)")
        } catch {
            checkError(error, expected: expected)
        }
    }

    private func checkError(_ error: ConversionError, expected: FixtureExpectation.ExpectedError) {
        let text = error.description
        switch expected.kind {
        case "ambiguous_prelu_slope":
            guard case let .ambiguousPReluSlope(_, module, _) = error else {
                Issue.record("expected ambiguousPReluSlope, found \(text)")
                return
            }
            #expect(module == expected.module)
        case "unsupported_activation":
            #expect(text.hasPrefix("Relu node '/"), "\(text)")
            #expect(
                text.contains("expected PRelu for \(expected.module).prelu, found Relu"), "\(text)")
        case "missing_residual_add":
            #expect(text.hasPrefix("BatchNormalization node '/"), "\(text)")
            #expect(text.contains("the input of \(expected.module) "), "\(text)")
            #expect(text.contains("the block has no residual Add"), "\(text)")
        case "unexpected_kernel_size":
            #expect(text.hasPrefix("Conv node '/"), "\(text)")
            #expect(text.contains("expected a 3x3 kernel for \(expected.module)"), "\(text)")
        default:
            Issue.record("unknown expected error kind \(expected.kind): \(text)")
        }
    }

    @Test(arguments: ["r18-torch-folded", "r18-unfolded"])
    func tensorsMatchSummaries(name: String) throws {
        let converted = try ONNXConverter.convert(modelAt: ConverterFixtures.url(name))
        try expectTensorsMatch(converted, summaries: ConverterFixtures.tensorSummaries(name))
    }

    /// Fixtures in other storage or op styles that carry the same weights as the two
    /// summarized ones.
    @Test(arguments: [
        ("r18-external-data", "r18-torch-folded"), ("r18-typed-data", "r18-torch-folded"),
        ("r18-initializers-as-inputs", "r18-torch-folded"),
        ("r18-omit-defaults", "r18-torch-folded"),
        ("r18-matmul-add", "r18-torch-folded"), ("r18-reshape-flatten", "r18-torch-folded"),
        ("r18-pinned-reshape", "r18-torch-folded"), ("r18-opset8", "r18-torch-folded"),
        ("r18-opset17-unfolded-omit-defaults-matmul-add-typed-data", "r18-unfolded"),
    ])
    func variantTensorsMatchSummaries(name: String, reference: String) throws {
        let converted = try ONNXConverter.convert(modelAt: ConverterFixtures.url(name))
        try expectTensorsMatch(converted, summaries: ConverterFixtures.tensorSummaries(reference))
    }

    private func expectTensorsMatch(
        _ converted: ConvertedModel, summaries: [(name: String, summary: FixtureTensorSummary)],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(
            converted.tensors.map(\.name) == summaries.map(\.name), sourceLocation: sourceLocation)
        for (tensor, entry) in zip(converted.tensors, summaries) {
            #expect(
                tensor.shape == entry.summary.shape, "\(tensor.name)",
                sourceLocation: sourceLocation)
            let sum = tensor.values.reduce(0.0) { $0 + Double($1) }
            let tolerance = 1e-9 + 1e-12 * Double(tensor.values.count)
            #expect(
                abs(sum - entry.summary.sum) <= tolerance,
                "\(tensor.name): sum \(sum), expected \(entry.summary.sum)",
                sourceLocation: sourceLocation)
            let first = tensor.values.prefix(entry.summary.first.count).map(Double.init)
            #expect(first == entry.summary.first, "\(tensor.name)", sourceLocation: sourceLocation)
        }
    }

    @Test func preluSlopeOfShapeCFixtureNamesModule() throws {
        do {
            _ = try ONNXConverter.convert(modelAt: ConverterFixtures.url("r18-prelu-slope-c"))
            Issue.record("converted a graph with [C] slopes without the option")
        } catch {
            #expect(error.description.contains(", read as prelu, has a slope of shape [4]."))
        }
    }

    @Test func r100FixtureHasAuraFaceDepths() throws {
        let converted = try ONNXConverter.convert(
            modelAt: ConverterFixtures.url("r100-torch-folded"))
        #expect(converted.metadata.architecture.stageDepths == IResNetArchitecture.r100.stageDepths)
        #expect(converted.metadata.architecture.name == "iresnet100")
    }
}
