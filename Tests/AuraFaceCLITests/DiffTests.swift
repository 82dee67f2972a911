// `auraface diff` on hand-built weight files, and `auraface inspect --tensors` and its
// tensor_sha256 check.

import AuraFace
import Foundation
import Testing

@testable import AuraFaceCLI

/// Writes a safetensors file with valid r18 metadata (plus `extraMetadata`) and `tensors`.
private func writeWeights(
    _ tensors: [(name: String, shape: [Int], values: [Float])], to url: URL,
    configure: (inout WeightFileMetadata) -> Void = { _ in }
) throws {
    var metadata = WeightFileMetadata(architecture: .r18)
    configure(&metadata)
    var writer = SafeTensorsWriter()
    writer.metadata = metadata.dictionary
    for tensor in tensors {
        writer.add(name: tensor.name, shape: tensor.shape, values: tensor.values)
    }
    try writer.write(to: url)
}

private let baseTensors: [(name: String, shape: [Int], values: [Float])] = [
    ("conv1.weight", [2, 2], [1, -2, 3, 4]),
    ("bn2.bias", [3], [0.5, 0, -0.5]),
    ("fc.bias", [2], [8, -8]),
]

@Suite struct DiffTests {
    @Test func identicalFilesExitZero() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.safetensors")
        let b = directory.appendingPathComponent("b.safetensors")
        try writeWeights(baseTensors, to: a)
        try writeWeights(baseTensors.reversed(), to: b)

        let result = runCommandLine(["diff", a.path, b.path])

        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.contains("Tensors: 3 in both with the same shape, 0 of them differ"))
        #expect(result.output.contains("Metadata: identical"))
        #expect(result.output.hasSuffix("The files are identical.\n"))
        #expect(result.error.isEmpty)
    }

    @Test func changedTensorExitsOne() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.safetensors")
        let b = directory.appendingPathComponent("b.safetensors")
        var changed = baseTensors
        changed[0].values = [1, -2, 3.5, 4]
        try writeWeights(changed, to: a)
        try writeWeights(baseTensors, to: b)

        let result = runCommandLine(["diff", a.path, b.path])

        #expect(result.status == 1)
        #expect(result.output.contains("3 in both with the same shape, 1 of them differ"))
        // max |a - b| = 0.5 and max |b| = 4, so the relative difference is 0.125.
        let row = try #require(result.output.split(separator: "\n").first { $0.contains("conv1.weight") })
        #expect(row.contains(" no "), "\(row)")
        #expect(row.contains(" 0.5 "), "\(row)")
        #expect(row.hasSuffix(" 0.125"), "\(row)")
        #expect(!result.output.contains("bn2.bias"), "bitwise-equal tensors are listed only with --all")
        #expect(result.output.hasSuffix("The files differ.\n"))
    }

    @Test func allListsEqualTensors() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.safetensors")
        try writeWeights(baseTensors, to: a)

        let result = runCommandLine(["diff", "--all", a.path, a.path])

        #expect(result.status == 0)
        let row = try #require(result.output.split(separator: "\n").first { $0.contains("bn2.bias") })
        #expect(row.contains(" yes "), "\(row)")
    }

    @Test func missingTensorAndShape() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.safetensors")
        let b = directory.appendingPathComponent("b.safetensors")
        try writeWeights(Array(baseTensors.prefix(2)), to: a)
        var reshaped = baseTensors
        reshaped[0].shape = [4]
        try writeWeights(reshaped, to: b)

        let result = runCommandLine(["diff", a.path, b.path])

        #expect(result.status == 1)
        #expect(result.output.contains("  only in B: fc.bias"))
        #expect(result.output.contains("  shape differs: conv1.weight [2, 2] in A, [4] in B"))
        #expect(result.output.contains("1 in both with the same shape, 0 of them differ; 0 only in A, 1 only in B, 1 with different shapes"))
    }

    @Test func metadataDifference() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.safetensors")
        let b = directory.appendingPathComponent("b.safetensors")
        try writeWeights(baseTensors, to: a) { $0.sourceFile = "a.onnx" }
        try writeWeights(baseTensors, to: b) { $0.channelOrder = "BGR" }

        let result = runCommandLine(["diff", a.path, b.path])

        #expect(result.status == 1)
        #expect(result.output.contains("Metadata: 2 keys differ"))
        #expect(result.output.contains("  only in A: source_file"))
        #expect(result.output.contains("  channel_order: RGB in A, BGR in B"))
    }

    @Test func unreadableFileExitsTwo() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.safetensors")
        try writeWeights(baseTensors, to: a)

        let result = runCommandLine(["diff", a.path, directory.appendingPathComponent("none.safetensors").path])

        #expect(result.status == 2)
        #expect(result.error.hasPrefix("auraface: error: "), "\(result.error)")
        #expect(result.output.isEmpty)
    }

    @Test func relativeDifferenceCases() {
        let zeroReference = DiffCommand.compareValues(name: "t", shape: [2], [1, 0], [0, 0])
        #expect(zeroReference.maxAbsoluteDifference == 1)
        #expect(zeroReference.maxRelativeDifference == .infinity)
        let sameNaN = DiffCommand.compareValues(name: "t", shape: [2], [.nan, 2], [.nan, 2])
        #expect(sameNaN.bitwiseEqual)
        #expect(sameNaN.maxAbsoluteDifference == 0)
        let signedZero = DiffCommand.compareValues(name: "t", shape: [1], [-0.0], [0.0])
        #expect(!signedZero.bitwiseEqual)
        #expect(signedZero.maxAbsoluteDifference == 0)
    }
}

@Suite struct InspectTensorsTests {
    @Test func statisticsIncludeNaNWeights() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("nan.safetensors")
        try writeWeights(
            [("layer1.0.bn1.weight", [6], [0, .nan, 2, .infinity, 0, -1]), ("fc.bias", [2], [3, 5])], to: url)

        let text = runCommandLine(["inspect", "--tensors", url.path])
        let json = runCommandLine(["inspect", "--tensors", "--json", url.path])

        // Two tensors are not an IResNet, so the report is printed in full and the exit status
        // is 1, because the library would not load the file.
        #expect(text.status == 1)
        #expect(text.error.contains("the tensors do not match the architecture: "), "\(text.error)")
        #expect(text.output.contains("Tensor hashes: not recorded"))
        let row = try #require(text.output.split(separator: "\n").first { $0.hasPrefix("  layer1.0.bn1.weight ") })
        let cells = row.split(separator: " ")
        // tensor, shape "[6]", min, max, mean, std, zeros, NaN, Inf.
        #expect(cells.map(String.init) == ["layer1.0.bn1.weight", "[6]", "-1", "2", "0.25", "1.08972", "2", "1", "1"])

        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        let fc = try #require(tensors.first { $0["name"] as? String == "fc.bias" })
        #expect(fc["mean"] as? Double == 4)
        #expect(fc["std"] as? Double == 1)
        #expect(fc["zeros"] as? Int == 0)
        let bn = try #require(tensors.first { $0["name"] as? String == "layer1.0.bn1.weight" })
        #expect(bn["nan"] as? Int == 1)
        #expect(bn["inf"] as? Int == 1)
        #expect(bn["count"] as? Int == 6)
    }

    @Test func convertedFileHashesMatch() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)

        let result = runCommandLine(["inspect", model])
        let json = runCommandLine(["inspect", "--json", model])

        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("Tensor hashes: all 93 tensors match tensor_sha256"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        #expect((object["tensor_hashes"] as? [String: Any])?["status"] as? String == "matched")
    }

    @Test func hashMismatchFailsInspect() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("tampered.safetensors")
        let recorded = baseTensors.map { tensor in
            (tensor.name, tensor.values.withUnsafeBytes { SHA256.hexDigest(of: $0) })
        }
        var tampered = baseTensors
        tampered[2].values = [8, -7]
        try writeWeights(tampered, to: url) { $0.tensorSHA256 = Dictionary(uniqueKeysWithValues: recorded) }

        let result = runCommandLine(["inspect", url.path])

        #expect(result.status == 1)
        #expect(result.output.contains("Tensor hashes: 1 mismatches among 3 tensors"))
        #expect(result.output.contains("  tensor 'fc.bias' has SHA-256 "))
        #expect(result.error.contains("1 tensors do not match the tensor_sha256 metadata (first: tensor 'fc.bias'"), "\(result.error)")
    }
}
