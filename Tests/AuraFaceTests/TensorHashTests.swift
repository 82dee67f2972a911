// The tensor_sha256 metadata key and the check of a file's tensors against it.

import Foundation
import Testing

@testable import AuraFace

@Suite struct TensorHashTests {
    /// Builds a two-tensor file whose metadata records `hashes`.
    private func file(a: [Float], b: [Float], hashes: [String: String]?) throws -> SafeTensorsFile {
        var metadata = WeightFileMetadata(architecture: .r18)
        metadata.tensorSHA256 = hashes
        var writer = SafeTensorsWriter()
        writer.metadata = metadata.dictionary
        writer.add(name: "a", shape: [2], values: a)
        writer.add(name: "b", shape: [1], values: b)
        return try SafeTensorsFile(bytes: writer.serialized(), path: "hashes.safetensors")
    }

    private func hash(_ values: [Float]) -> String {
        values.withUnsafeBytes { SHA256.hexDigest(of: $0) }
    }

    @Test func tensorHashOfKnownBytes() throws {
        // 1.0f is 00 00 80 3f little-endian; the digest is that of those 4 bytes.
        let loaded = try file(a: [1, 2], b: [1], hashes: nil)
        #expect(loaded.sha256(of: try #require(loaded.entry(named: "b"))) == SHA256.hexDigest(of: [0x00, 0x00, 0x80, 0x3f]))
    }

    @Test func metadataRoundTrip() throws {
        let hashes = ["a": hash([1, 2]), "b": hash([3])]
        let loaded = try file(a: [1, 2], b: [3], hashes: hashes)
        let metadata = try WeightFileMetadata(dictionary: loaded.metadata, path: loaded.path)

        #expect(metadata.tensorSHA256 == hashes)
        #expect(loaded.tensorHashMismatches(hashes).isEmpty)
    }

    @Test func metadataWithoutHashes() throws {
        let loaded = try file(a: [1, 2], b: [3], hashes: nil)
        #expect(loaded.metadata["tensor_sha256"] == nil)
        #expect(try WeightFileMetadata(dictionary: loaded.metadata, path: loaded.path).tensorSHA256 == nil)
    }

    @Test func mismatchesNamed() throws {
        let recorded = ["a": hash([1, 2]), "b": hash([3]), "c": hash([4])]
        let changed = try file(a: [1, 2.5], b: [3], hashes: nil)
        let mismatches = changed.tensorHashMismatches(["a": recorded["a"]!, "c": recorded["c"]!])

        #expect(mismatches == [
            .changed(tensor: "a", expected: recorded["a"]!, found: hash([1, 2.5])),
            .unrecorded(tensor: "b"),
            .missing(tensor: "c"),
        ])
    }

    @Test(arguments: [
        "[\"a\"]",
        "{\"a\": \"abc\"}",
        "{\"a\": \"\(String(repeating: "G", count: 64))\"}",
    ])
    func invalidHashesRejected(text: String) throws {
        var values = WeightFileMetadata(architecture: .r18).dictionary
        values["tensor_sha256"] = text
        #expect(throws: WeightFileError.self) {
            _ = try WeightFileMetadata(dictionary: values, path: "bad.safetensors")
        }
    }
}
