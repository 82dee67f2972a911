/// Errors from reading, checking or writing a weight file.
public enum WeightFileError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The output file could not be written.
    case unwritable(path: String, reason: String)
    /// The bytes are not a well-formed safetensors file.
    case invalidSafeTensors(path: String, reason: String)
    /// A `__metadata__` entry is missing or malformed.
    case invalidMetadata(path: String, key: String, reason: String)
    /// The architecture's numbers cannot describe a network.
    case invalidArchitecture(String)
    /// A tensor the architecture needs is not in the file.
    case missingTensor(path: String, tensor: String)
    /// The file contains a tensor the architecture has no place for.
    case unexpectedTensor(path: String, tensor: String)
    /// A tensor has the wrong shape for the architecture.
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])
    /// A tensor contains NaN or infinite values.
    case nonFiniteValues(path: String, tensor: String, count: Int)
    /// A tensor contains finite values that its role forbids, such as a negative variance.
    case invalidValues(path: String, tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            "cannot read '\(path)': \(reason)"
        case let .unwritable(path, reason):
            "cannot write '\(path)': \(reason)"
        case let .invalidSafeTensors(path, reason):
            "'\(path)' is not a valid safetensors file: \(reason)"
        case let .invalidMetadata(path, key, reason):
            "'\(path)': metadata '\(key)' is invalid: \(reason)"
        case let .invalidArchitecture(reason):
            "invalid IResNet architecture: \(reason)"
        case let .missingTensor(path, tensor):
            "'\(path)': tensor '\(tensor)' is missing, but the architecture in the metadata needs it"
        case let .unexpectedTensor(path, tensor):
            "'\(path)': tensor '\(tensor)' is not part of the architecture in the metadata"
        case let .shapeMismatch(path, tensor, expected, found):
            "'\(path)': tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .nonFiniteValues(path, tensor, count):
            "'\(path)': tensor '\(tensor)' holds \(count) NaN or infinite values"
        case let .invalidValues(path, tensor, reason):
            "'\(path)': tensor '\(tensor)' is invalid: \(reason)"
        }
    }
}
