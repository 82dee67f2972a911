import AuraFace
import Testing

@Suite struct WeightFileMetadataTests {
    private func r18Dictionary() -> [String: String] {
        var metadata = WeightFileMetadata(architecture: .r18)
        metadata.foldedBatchNorms = ["bn1", "layer1.0.bn2"]
        metadata.conversionNotes = ["a note with a / slash"]
        metadata.sourceSHA256 = String(repeating: "ab", count: 32)
        return metadata.dictionary
    }

    @Test func dictionaryRoundTrips() throws {
        let parsed = try WeightFileMetadata(dictionary: r18Dictionary(), path: "w.safetensors")
        #expect(parsed.architecture == .r18)
        #expect(parsed.foldedBatchNorms == ["bn1", "layer1.0.bn2"])
        #expect(parsed.conversionNotes == ["a note with a / slash"])
        #expect(parsed.inputMean == 127.5)
        #expect(parsed.inputScale == 1 / 127.5)
        #expect(parsed.sourceSHA256 == String(repeating: "ab", count: 32))
    }

    @Test func zeroInputScaleIsRejected() {
        var values = r18Dictionary()
        values["input_scale"] = "0"
        #expect(throws: WeightFileError.invalidMetadata(
            path: "w.safetensors", key: "input_scale", reason: "expected a non-zero number, found 0")
        ) {
            try WeightFileMetadata(dictionary: values, path: "w.safetensors")
        }
    }

    @Test func invalidArchitectureNamesTheFile() {
        var values = r18Dictionary()
        values["stage_depths"] = "[2,2,2]"
        #expect(throws: WeightFileError.invalidMetadata(
            path: "w.safetensors", key: "architecture",
            reason: "expected 4 stage depths, found 3: [2, 2, 2]")
        ) {
            try WeightFileMetadata(dictionary: values, path: "w.safetensors")
        }
    }

    @Test func foldedBatchNormMustFollowALayer() {
        var values = r18Dictionary()
        // A block's bn1 normalizes the block input before zero padding: it cannot be folded.
        values["folded_batch_norms"] = #"["layer1.0.bn1"]"#
        do {
            _ = try WeightFileMetadata(dictionary: values, path: "w.safetensors")
            Issue.record("expected an error for a folded layer1.0.bn1")
        } catch {
            #expect(error.description.contains("'layer1.0.bn1' is not a batch norm that follows"))
        }
    }

    @Test func otherFormatIsRejectedWithTheFix() {
        var values = r18Dictionary()
        values["format"] = "something-else"
        do {
            _ = try WeightFileMetadata(dictionary: values, path: "w.safetensors")
            Issue.record("expected an error for format 'something-else'")
        } catch {
            #expect(error.description.contains("expected 'auraface-iresnet', found 'something-else'"))
            #expect(error.description.contains("auraface convert"))
        }
    }
}
