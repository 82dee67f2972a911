// Per-tensor SHA-256 hashes of a safetensors file, checked against `tensor_sha256`.

/// One way a file's tensors disagree with the hashes recorded in its metadata.
public enum TensorHashMismatch: Sendable, Equatable, CustomStringConvertible {
    /// The tensor's bytes hash to `found`, but the metadata records `expected`.
    case changed(tensor: String, expected: String, found: String)
    /// The file has the tensor, but the metadata records no hash for it.
    case unrecorded(tensor: String)
    /// The metadata records a hash for a tensor the file does not have.
    case missing(tensor: String)

    public var description: String {
        switch self {
        case let .changed(tensor, expected, found):
            "tensor '\(tensor)' has SHA-256 \(found), expected \(expected) from tensor_sha256"
        case let .unrecorded(tensor):
            "tensor '\(tensor)' has no entry in tensor_sha256"
        case let .missing(tensor):
            "tensor_sha256 lists '\(tensor)', which the file does not contain"
        }
    }
}

extension SafeTensorsFile {
    /// Computes the lowercase hex SHA-256 of a tensor's data bytes as stored in the file.
    public func sha256(of entry: SafeTensorsEntry) -> String {
        let start = dataStart + entry.dataRange.lowerBound
        return bytes.withUnsafeBytes { raw in
            SHA256.hexDigest(of: UnsafeRawBufferPointer(rebasing: raw[start..<(start + entry.dataRange.count)]))
        }
    }

    /// Hashes every tensor and compares the hashes with `expected` (tensor name to hex
    /// SHA-256, as in the `tensor_sha256` metadata key).
    ///
    /// - Returns: the mismatches, tensors in file order first, then recorded names the file
    ///   lacks in name order; empty when every tensor matches.
    public func tensorHashMismatches(_ expected: [String: String]) -> [TensorHashMismatch] {
        var mismatches: [TensorHashMismatch] = []
        for entry in entries {
            guard let recorded = expected[entry.name] else {
                mismatches.append(.unrecorded(tensor: entry.name))
                continue
            }
            let found = sha256(of: entry)
            if found != recorded.lowercased() {
                mismatches.append(.changed(tensor: entry.name, expected: recorded, found: found))
            }
        }
        let stored = Set(entries.map(\.name))
        for name in expected.keys.sorted() where !stored.contains(name) {
            mismatches.append(.missing(tensor: name))
        }
        return mismatches
    }
}
