// The safetensors reader and writer: round trip, and every malformed-file error with its
// message.

import Foundation
import Testing

@testable import AuraFace

/// Assembles a safetensors file by hand: the 8-byte little-endian header length, the header
/// text, then `dataBytes` zero bytes of data.
private func rawFile(header: String, dataBytes: Int, headerLength: UInt64? = nil) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    let length = headerLength ?? UInt64(headerBytes.count)
    var bytes = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) }
    bytes += headerBytes
    bytes += [UInt8](repeating: 0, count: dataBytes)
    return bytes
}

/// One malformed file and the reason the reader must give.
struct MalformedFile: CustomTestStringConvertible, Sendable {
    var label: String
    var bytes: [UInt8]
    var reason: String
    var testDescription: String { label }

    static let all: [MalformedFile] = [
        .init(
            label: "shorter than the length field", bytes: [1, 2, 3, 4, 5],
            reason: "expected at least 8 bytes for the header length, found 5"),
        .init(
            label: "header too long",
            bytes: rawFile(header: "{}", dataBytes: 0, headerLength: UInt64(SafeTensorsFile.maxHeaderBytes) + 1),
            reason: "header length 104857601 exceeds the limit of 104857600 bytes"),
        .init(
            label: "header past end of file", bytes: rawFile(header: "{}", dataBytes: 10, headerLength: 100),
            reason: "header length 100 runs past the end of the file (20 bytes)"),
        .init(
            label: "invalid JSON", bytes: rawFile(header: "{\"a\": ", dataBytes: 0),
            reason: "header is not valid JSON"),
        .init(
            label: "header not an object", bytes: rawFile(header: "[1, 2]", dataBytes: 0),
            reason: "header is not a JSON object"),
        .init(
            label: "metadata value not a string",
            bytes: rawFile(header: #"{"__metadata__": {"x": 1}}"#, dataBytes: 0),
            reason: "__metadata__ value for 'x' is not a string"),
        .init(
            label: "unsupported dtype",
            bytes: rawFile(header: #"{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}"#, dataBytes: 4),
            reason: "tensor 'a' has dtype F16, expected F32"),
        .init(
            label: "negative dimension",
            bytes: rawFile(header: #"{"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}"#, dataBytes: 8),
            reason: "tensor 'a' has shape [-2], expected non-negative integers"),
        .init(
            label: "shape and byte count disagree",
            bytes: rawFile(header: #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, dataBytes: 8),
            reason: "tensor 'a' of shape [3] needs 12 bytes, but data_offsets [0, 8] cover 8"),
        .init(
            label: "overlapping offsets",
            bytes: rawFile(
                header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "#
                    + #""b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                dataBytes: 12),
            reason: "tensor 'b' overlaps the tensor before it"),
        .init(
            label: "hole between tensors",
            bytes: rawFile(
                header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "#
                    + #""b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}"#,
                dataBytes: 20),
            reason: "hole in the data section: tensor 'b' starts at byte 12, expected 8"),
        .init(
            label: "data past end of file",
            bytes: rawFile(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, dataBytes: 4),
            reason: "tensor data ends at byte 8 of the data section, but the file holds only 4 data bytes"),
        .init(
            label: "trailing bytes",
            bytes: rawFile(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, dataBytes: 12),
            reason: "4 bytes after the last tensor belong to no tensor"),
    ]
}

@Suite struct SafeTensorsTests {
    @Test func writerOutputReadsBack() throws {
        var writer = SafeTensorsWriter()
        writer.metadata = ["format": "test", "note": "two tensors"]
        writer.add(name: "b.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        writer.add(name: "a.bias", shape: [2], values: [-1.5, .pi])
        let file = try SafeTensorsFile(bytes: writer.serialized(), path: "t.safetensors")

        #expect(file.metadata == ["format": "test", "note": "two tensors"])
        #expect(file.entries.map(\.name) == ["b.weight", "a.bias"], "entries in data order")
        #expect(file.dataStart % 8 == 0)
        let weight = try #require(file.entry(named: "b.weight"))
        #expect(weight.shape == [2, 3])
        #expect(file.floats(for: weight) == [1, 2, 3, 4, 5, 6])
        let bias = try #require(file.entry(named: "a.bias"))
        #expect(file.floats(for: bias) == [-1.5, .pi])
        #expect(file.entry(named: "missing") == nil)
    }

    @Test func zeroSizedTensorBesideAnotherAtSameOffset() throws {
        // An empty tensor occupies no bytes, so it may share its offset with the next tensor
        // whatever the order of their names.
        let bytes = rawFile(
            header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "#
                + #""z": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}"#,
            dataBytes: 8)
        let file = try SafeTensorsFile(bytes: bytes, path: "t.safetensors")
        #expect(file.entry(named: "z")?.elementCount == 0)
        #expect(file.floats(for: file.entry(named: "z")!) == [])
        #expect(file.floats(for: file.entry(named: "a")!) == [0, 0])
    }

    @Test(arguments: MalformedFile.all)
    func malformedFileIsRejected(_ malformed: MalformedFile) {
        let expected = WeightFileError.invalidSafeTensors(path: "t.safetensors", reason: malformed.reason)
        #expect(throws: expected) {
            try SafeTensorsFile(bytes: malformed.bytes, path: "t.safetensors")
        }
    }

    @Test func fileReadsBackFromDisk() throws {
        var writer = SafeTensorsWriter()
        writer.add(name: "w", shape: [3], values: [1, 2, 3])
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("auraface-safetensors-test-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writer.write(to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.bytes == writer.serialized())
        #expect(file.path == url.path)
    }

    @Test func missingFileIsUnreadable() {
        let path = "/nonexistent/w.safetensors"
        #expect(throws: WeightFileError.unreadable(path: path, reason: "No such file or directory")) {
            try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path))
        }
    }

    @Test func directoryIsUnreadable() {
        let path = FileManager.default.temporaryDirectory.path
        #expect(throws: WeightFileError.unreadable(path: path, reason: "expected a regular file, found a directory")) {
            try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path))
        }
    }

    @Test func missingOutputFolderIsNamed() {
        let path = "/nonexistent-auraface-folder/w.safetensors"
        #expect(
            throws: WeightFileError.unwritable(
                path: path, reason: "the folder '/nonexistent-auraface-folder' does not exist")
        ) {
            try writeFileAtomically([1, 2, 3], to: URL(fileURLWithPath: path))
        }
    }

    @Test func folderPathIsNotWrittenAsAFile() throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("auraface-folder-path-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        // A path with a trailing '/' whose folder does not exist yet.
        let url = URL(fileURLWithPath: folder.path + "/")
        #expect(throws: WeightFileError.unwritable(path: folder.path, reason: "the path ends in '/' or is an existing folder; expected a file path")) {
            try writeFileAtomically([1, 2, 3], to: url)
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    @Test func outputFolderThatIsAFileIsNamed() throws {
        let file = FileManager.default.temporaryDirectory
            .appendingPathComponent("auraface-not-a-folder-\(UUID().uuidString)")
        try writeFileAtomically([0], to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let path = file.appendingPathComponent("w.safetensors").path
        #expect(throws: WeightFileError.unwritable(path: path, reason: "'\(file.path)' is not a folder")) {
            try writeFileAtomically([1, 2, 3], to: URL(fileURLWithPath: path))
        }
    }

    @Test func invalidFileMessageNamesPathAndReason() {
        let error = WeightFileError.invalidSafeTensors(path: "w.safetensors", reason: "header is not valid JSON")
        #expect(error.description == "'w.safetensors' is not a valid safetensors file: header is not valid JSON")
    }
}
