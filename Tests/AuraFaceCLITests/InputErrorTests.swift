// Command-line errors for bad input files: each message names the file it is about.

import AuraFace
import Foundation
import Testing

@testable import AuraFaceCLI

@Suite struct InputErrorTests {
    @Test func convertErrorNamesTheModelFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = fixture("converter/bad-kernel-5x5.onnx")

        let result = runCommandLine(["convert", model, directory.appendingPathComponent("out.safetensors").path])

        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.error.hasPrefix("auraface: error: '\(model)': "), "\(result.error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func inspectErrorNamesTheModelFile() throws {
        let model = fixture("converter/bad-relu-in-block.onnx")

        let result = runCommandLine(["inspect", model])

        #expect(result.status == 1)
        #expect(result.error.hasPrefix("auraface: error: '\(model)': "), "\(result.error)")
    }

    @Test(arguments: [[3, 112, 112], [1, 1, 3, 112, 112], [0, 3, 112, 112]])
    func tensorOfWrongRankIsRejected(shape: [Int]) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)
        let input = directory.appendingPathComponent("x.npy")
        let output = directory.appendingPathComponent("e.npy")
        let count = shape.reduce(1, *)
        try NpyArray(shape: shape, values: [Float](repeating: 0.5, count: count)).write(to: input)

        let result = runCommandLine(["embed", "--model", model, "--tensor", input.path, "--output", output.path])

        #expect(result.status == 1)
        #expect(
            result.error.contains("'\(input.path)' has shape \(shape), expected [N, 3, 112, 112]"),
            "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}
