import Foundation

/// The description of a converted weight file's network, stored as strings in the
/// safetensors `__metadata__` object.
///
/// | key | example | meaning |
/// | --- | --- | --- |
/// | `format` | `auraface-iresnet` | marks files written by this library's converter |
/// | `format_version` | `1` | bumped when the layout changes |
/// | `architecture` | `iresnet100` | conventional name, for people |
/// | `stage_depths` | `[3,13,30,3]` | blocks per stage |
/// | `stage_widths` | `[64,128,256,512]` | channels per stage |
/// | `stem_width` | `64` | channels of `conv1` |
/// | `embedding_size` | `512` | length of the output |
/// | `input_size` | `112` | input height and width |
/// | `input_channels` | `3` | input channels |
/// | `channel_order` | `RGB` | order of the input channels |
/// | `input_mean`, `input_scale` | `127.5`, `0.0078125` | pixel v maps to (v - mean) * scale |
/// | `input_normalization_in_graph` | `false` | whether the ONNX graph did that mapping itself |
/// | `bn_epsilon` | `1e-05` | epsilon of every batch norm |
/// | `folded_batch_norms` | `["bn1","layer1.0.bn2"]` | batch norms folded into the layer before |
/// | `source_sha256`, `source_file` | | the ONNX file this was converted from |
/// | `onnx_opset` | `11` | the opset of the source graph |
/// | `conversion_notes` | `["..."]` | readings the converter made that a user should know of |
/// | `tensor_sha256` | `{"bn2.bias":"9f86..."}` | optional: SHA-256 of each tensor's stored bytes |
public struct WeightFileMetadata: Sendable, Equatable {
    public static let formatName = "auraface-iresnet"
    public static let formatVersion = 1

    public var architecture: IResNetArchitecture
    /// Order of the input channels the network was trained on.
    public var channelOrder: String = "RGB"
    /// Pixels `v` in 0...255 become `(v - inputMean) * inputScale` before the stem.
    public var inputMean: Float = 127.5
    public var inputScale: Float = 1 / 127.5
    /// True when the source graph applied `inputMean` and `inputScale` itself (a Sub/Mul
    /// prelude, as in MXNet-made models), so its graph input took raw 0-255 pixels.
    public var inputNormalizationInGraph: Bool = false
    /// Epsilon of every batch norm in the file.
    public var batchNormEpsilon: Float = 1e-5
    /// Module paths of batch norms that the exporter folded into the layer before them.
    public var foldedBatchNorms: [String] = []
    public var sourceSHA256: String?
    public var sourceFile: String?
    public var onnxOpset: Int?
    /// Readings the converter made that a user should know about.
    public var conversionNotes: [String] = []
    /// Lowercase hex SHA-256 of each tensor's data bytes as stored in the file (little-endian
    /// float32, row-major), by tensor name; nil in files written without it.
    /// `SafeTensorsFile.tensorHashMismatches(_:)` checks a file against it.
    public var tensorSHA256: [String: String]?

    public init(architecture: IResNetArchitecture) {
        self.architecture = architecture
    }

    /// The metadata as safetensors `__metadata__` strings.
    public var dictionary: [String: String] {
        var values: [String: String] = [
            "format": Self.formatName,
            "format_version": String(Self.formatVersion),
            "architecture": architecture.name,
            "stage_depths": jsonText(architecture.stageDepths),
            "stage_widths": jsonText(architecture.stageWidths),
            "stem_width": String(architecture.stemWidth),
            "embedding_size": String(architecture.embeddingSize),
            "input_size": String(architecture.inputSize),
            "input_channels": String(architecture.inputChannels),
            "channel_order": channelOrder,
            "input_mean": String(inputMean),
            "input_scale": String(inputScale),
            "input_normalization_in_graph": String(inputNormalizationInGraph),
            "bn_epsilon": String(batchNormEpsilon),
            "folded_batch_norms": jsonText(foldedBatchNorms),
            "conversion_notes": jsonText(conversionNotes),
        ]
        values["source_sha256"] = sourceSHA256
        values["source_file"] = sourceFile
        values["onnx_opset"] = onnxOpset.map(String.init)
        values["tensor_sha256"] = tensorSHA256.map(sortedJSONObjectText)
        return values
    }

    /// Parses and checks metadata read from the file at `path`.
    ///
    /// - Throws: `WeightFileError.invalidMetadata` naming the first missing or malformed key.
    public init(dictionary values: [String: String], path: String) throws(WeightFileError) {
        func value(_ key: String) throws(WeightFileError) -> String {
            guard let text = values[key] else {
                throw .invalidMetadata(path: path, key: key, reason: "missing")
            }
            return text
        }
        func integer(_ key: String) throws(WeightFileError) -> Int {
            let text = try value(key)
            guard let number = Int(text) else {
                throw .invalidMetadata(path: path, key: key, reason: "expected an integer, found '\(text)'")
            }
            return number
        }
        func float(_ key: String) throws(WeightFileError) -> Float {
            let text = try value(key)
            guard let number = Float(text), number.isFinite else {
                throw .invalidMetadata(path: path, key: key, reason: "expected a finite number, found '\(text)'")
            }
            return number
        }
        func integers(_ key: String) throws(WeightFileError) -> [Int] {
            let text = try value(key)
            guard let array = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any],
                let numbers = array as? [NSNumber],
                let ints = Optional(numbers.compactMap { Int(exactly: $0.doubleValue) }),
                ints.count == numbers.count
            else {
                throw .invalidMetadata(path: path, key: key, reason: "expected a JSON array of integers, found '\(text)'")
            }
            return ints
        }
        func strings(_ key: String) throws(WeightFileError) -> [String] {
            guard let text = values[key] else { return [] }
            guard let array = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else {
                throw .invalidMetadata(path: path, key: key, reason: "expected a JSON array of strings, found '\(text)'")
            }
            return array
        }

        let format = try value("format")
        guard format == Self.formatName else {
            throw .invalidMetadata(
                path: path, key: "format",
                reason: "expected '\(Self.formatName)', found '\(format)'; convert the ONNX file with 'auraface convert'")
        }
        let version = try integer("format_version")
        guard version == Self.formatVersion else {
            throw .invalidMetadata(
                path: path, key: "format_version",
                reason: "expected \(Self.formatVersion), found \(version); convert the ONNX file again with this version")
        }
        let architecture = IResNetArchitecture(
            stageDepths: try integers("stage_depths"),
            stageWidths: try integers("stage_widths"),
            stemWidth: try integer("stem_width"),
            embeddingSize: try integer("embedding_size"),
            inputSize: try integer("input_size"),
            inputChannels: try integer("input_channels"))
        do {
            try architecture.validate()
        } catch let .invalidArchitecture(reason) {
            throw .invalidMetadata(path: path, key: "architecture", reason: reason)
        } catch {
            throw error
        }
        self.init(architecture: architecture)

        channelOrder = try value("channel_order")
        guard ["RGB", "BGR"].contains(channelOrder) else {
            throw .invalidMetadata(path: path, key: "channel_order", reason: "expected RGB or BGR, found '\(channelOrder)'")
        }
        inputMean = try float("input_mean")
        inputScale = try float("input_scale")
        // A zero scale would map every face to the same input, and so to the same embedding.
        guard inputScale != 0 else {
            throw .invalidMetadata(path: path, key: "input_scale", reason: "expected a non-zero number, found 0")
        }
        let inGraph = try value("input_normalization_in_graph")
        guard let inGraphFlag = Bool(inGraph) else {
            throw .invalidMetadata(
                path: path, key: "input_normalization_in_graph", reason: "expected true or false, found '\(inGraph)'")
        }
        inputNormalizationInGraph = inGraphFlag
        batchNormEpsilon = try float("bn_epsilon")
        guard batchNormEpsilon > 0 else {
            throw .invalidMetadata(path: path, key: "bn_epsilon", reason: "expected a positive number, found \(batchNormEpsilon)")
        }
        foldedBatchNorms = try strings("folded_batch_norms")
        let foldable = Set(architecture.batchNorms.filter { $0.follows != nil }.map(\.name))
        if let bad = foldedBatchNorms.first(where: { !foldable.contains($0) }) {
            throw .invalidMetadata(
                path: path, key: "folded_batch_norms",
                reason: "'\(bad)' is not a batch norm that follows a convolution or fc in this architecture")
        }
        sourceSHA256 = values["source_sha256"]
        sourceFile = values["source_file"]
        onnxOpset = values["onnx_opset"].flatMap { Int($0) }
        conversionNotes = try strings("conversion_notes")
        if let text = values["tensor_sha256"] {
            tensorSHA256 = try Self.parseTensorHashes(text, path: path)
        }
    }

    private static func parseTensorHashes(_ text: String, path: String) throws(WeightFileError) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String] else {
            throw .invalidMetadata(
                path: path, key: "tensor_sha256",
                reason: "expected a JSON object of tensor names to hex strings, found '\(text.prefix(80))'")
        }
        let hexDigits = Set("0123456789abcdef")
        for (name, hash) in object where hash.count != 64 || !hash.allSatisfy(hexDigits.contains) {
            throw .invalidMetadata(
                path: path, key: "tensor_sha256",
                reason: "expected 64 lowercase hex digits for '\(name)', found '\(hash)'")
        }
        return object
    }
}

private func sortedJSONObjectText(_ object: [String: String]) -> String {
    // A dictionary of strings always serializes.
    String(
        decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
        as: UTF8.self)
}

private func jsonText(_ value: Any) -> String {
    // Arrays of integers or strings always serialize.
    String(decoding: try! JSONSerialization.data(withJSONObject: value, options: [.withoutEscapingSlashes]), as: UTF8.self)
}
