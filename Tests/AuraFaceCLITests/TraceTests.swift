// `auraface trace` and `auraface convert --layer-map`: files, manifest and printed table.

import AuraFace
import Foundation
import Testing

@testable import AuraFaceCLI

@Suite struct TraceTests {
    @Test func traceWritesEveryLayer() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let out = directory.appendingPathComponent("trace")

        let result = runCommandLine([
            "trace", "--model", model, "--tensor", fixture("parity/r18.input.npy"), "--out", out.path,
        ])

        #expect(result.status == 0, "\(result.error)")
        let manifestData = try Data(contentsOf: out.appendingPathComponent("manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let layers = try #require(manifest["layers"] as? [[String: Any]])
        let names = layers.compactMap { $0["name"] as? String }
        // r18 from torch.onnx has every batch norm after a conv folded: no conv layers appear.
        #expect(names.count == 49)
        #expect(names.prefix(4) == ["bn1", "prelu", "layer1.0.bn1", "layer1.0.bn2"])
        #expect(names.suffix(3) == ["bn2", "fc", "features"])
        #expect(names.contains("layer1.0.downsample"))
        #expect(names.contains("layer4.1"))
        #expect(manifest["input_shape"] as? [Int] == [3, 3, 112, 112])

        for layer in layers {
            let name = try #require(layer["name"] as? String)
            let file = try #require(layer["file"] as? String)
            #expect(file == name + ".npy")
            let array = try NpyArray(contentsOf: out.appendingPathComponent(file))
            #expect(layer["shape"] as? [Int] == array.shape, "\(name)")
            let statistics = TensorStatistics(array.values)
            // min and max are float32 values; Foundation's JSON parser on Linux may round
            // the last digit of the Double text, so they are compared as Float.
            #expect((layer["min"] as? Double).map(Float.init) == statistics.min.map(Float.init), "\(name)")
            #expect((layer["max"] as? Double).map(Float.init) == statistics.max.map(Float.init), "\(name)")
            let mean = try #require(layer["mean"] as? Double)
            let norm = try #require(layer["l2_norm"] as? Double)
            #expect(abs(mean - statistics.mean!) <= 1e-12 * max(1, abs(mean)), "\(name)")
            #expect(abs(norm - statistics.l2Norm) <= 1e-12 * norm, "\(name)")
        }
        // The printed table: a header, then one row per layer in manifest order.
        let rows = result.output.split(separator: "\n")
        #expect(rows.count == layers.count + 1)
        #expect(rows.first?.contains("L2 norm") == true)
        #expect(rows[1].hasPrefix("  bn1 "))
    }

    @Test func featuresEqualRawEmbedding() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let out = directory.appendingPathComponent("trace")
        let embedded = directory.appendingPathComponent("raw.npy")

        let traced = runCommandLine([
            "trace", "--model", model, "--tensor", fixture("parity/r18.input.npy"), "--out", out.path,
        ])
        let embed = runCommandLine([
            "embed", "--model", model, "--tensor", fixture("parity/r18.input.npy"), "--output", embedded.path,
            "--raw",
        ])

        #expect(traced.status == 0, "\(traced.error)")
        #expect(embed.status == 0, "\(embed.error)")
        let features = try NpyArray(contentsOf: out.appendingPathComponent("features.npy"))
        let raw = try NpyArray(contentsOf: embedded)
        #expect(features.shape == raw.shape)
        #expect(features.values == raw.values)
    }

    @Test func layerMapMatchesTrace() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("m.safetensors").path
        let map = directory.appendingPathComponent("map.json")
        let out = directory.appendingPathComponent("trace")

        let convert = runCommandLine([
            "convert", "--layer-map", map.path, fixture("parity/r18-mxnet-unfolded.onnx"), model,
        ])
        let trace = runCommandLine([
            "trace", "--model", model, "--tensor", fixture("parity/r18-mxnet-unfolded.input.npy"), "--out", out.path,
        ])

        #expect(convert.status == 0, "\(convert.error)")
        #expect(trace.status == 0, "\(trace.error)")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: map)) as? [[String: String]])
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json")))
                as? [String: Any])
        let traced = try #require(manifest["layers"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        // This export keeps its batch norms, so the convolutions appear on their own.
        #expect(entries.map { $0["layer"] } == traced)
        #expect(traced.contains("conv1"))
        #expect(traced.contains("layer1.0.downsample.0"))
        #expect(entries.allSatisfy { !($0["onnx_value"] ?? "").isEmpty })
        #expect(Set(entries.compactMap { $0["onnx_value"] }).count == entries.count)
    }

    @Test func traceRejectsWrongInputShape() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let tensor = directory.appendingPathComponent("x.npy")
        try NpyArray(shape: [1, 3, 64, 64], values: [Float](repeating: 0, count: 3 * 64 * 64)).write(to: tensor)

        let result = runCommandLine([
            "trace", "--model", model, "--tensor", tensor.path, "--out", directory.appendingPathComponent("t").path,
        ])

        #expect(result.status == 1)
        #expect(result.error.contains("has shape [1, 3, 64, 64], expected [N, 3, 112, 112]"), "\(result.error)")
    }

    @Test func traceRequiresOut() {
        let result = runCommandLine(["trace", "--model", "m.safetensors", "--tensor", "x.npy"])
        #expect(result.status == 2)
        #expect(result.error.contains("missing required option --out DIR"), "\(result.error)")
    }

    @Test func statisticsOfKnownValues() throws {
        let statistics = TensorStatistics([0, -2, 4, .nan, .infinity, 0, 1])

        #expect(statistics.count == 7)
        #expect(statistics.finiteCount == 5)
        #expect(statistics.zeroCount == 2)
        #expect(statistics.nanCount == 1)
        #expect(statistics.infiniteCount == 1)
        #expect(statistics.min == -2)
        #expect(statistics.max == 4)
        #expect(statistics.mean == 0.6)
        // Population variance of [0, -2, 4, 0, 1]: 21 / 5 - 0.36 = 3.84.
        #expect(abs(statistics.std! - 3.84.squareRoot()) < 1e-12)
        #expect(statistics.l2Norm == 21.squareRoot())
    }

    @Test func statisticsOfNoFiniteValues() {
        let statistics = TensorStatistics([.nan, -.infinity])
        #expect(statistics.min == nil)
        #expect(statistics.mean == nil)
        #expect(statistics.std == nil)
        #expect(TensorStatistics.text(statistics.min) == "-")
    }

    @Test func manifestOfKnownRecord() throws {
        let record = TraceCommand.LayerRecord(
            name: "layer1.0.bn1", file: "layer1.0.bn1.npy", shape: [1, 2, 1, 2],
            statistics: TensorStatistics([3, -4, 0, 0]))
        let text = TraceCommand.manifestJSON([record], model: "m", input: "x.npy", inputShape: [1, 3, 112, 112])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let layer = try #require((object["layers"] as? [[String: Any]])?.first)

        #expect(layer["name"] as? String == "layer1.0.bn1")
        #expect(layer["shape"] as? [Int] == [1, 2, 1, 2])
        #expect(layer["min"] as? Double == -4)
        #expect(layer["max"] as? Double == 3)
        #expect(layer["mean"] as? Double == -0.25)
        #expect(layer["l2_norm"] as? Double == 5)
        #expect(layer["non_finite"] as? Int == 0)
    }
}
