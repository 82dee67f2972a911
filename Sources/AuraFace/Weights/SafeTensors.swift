// The safetensors format of Hugging Face: an 8-byte little-endian header length N, then N
// bytes of JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// plus an optional "__metadata__" object of string values, then the raw little-endian data.
// Offsets count from the first byte after the header.

import Foundation

/// The element types this library reads and writes. Only `F32` feeds the network.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32"

    /// The size of one element in bytes.
    public var byteCount: Int { 4 }
}

/// One tensor's entry in a safetensors header.
public struct SafeTensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// Byte range of the data, relative to the start of the data section.
    public var dataRange: Range<Int>

    /// The number of elements, the product of `shape` (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed safetensors file: its header entries, its metadata and its bytes.
///
/// The whole file is read into memory once, and opening it costs that read plus the JSON
/// header parse. `floats(for:)` copies a tensor's values out of the buffer.
public struct SafeTensorsFile: Sendable {
    /// The largest header this reader accepts. A real IResNet-100 header is about 40 KB.
    public static let maxHeaderBytes = 100 * 1024 * 1024

    /// Entries in file order (sorted by data offset).
    public let entries: [SafeTensorsEntry]
    /// The `__metadata__` object, or empty when the file has none.
    public let metadata: [String: String]
    /// The file's bytes: header and data.
    public let bytes: [UInt8]
    /// The offset in `bytes` of the data section's first byte.
    public let dataStart: Int
    /// The file the bytes came from, for error messages.
    public let path: String

    private let indexByName: [String: Int]

    /// Reads and validates a safetensors file.
    ///
    /// - Throws: `WeightFileError` when the file cannot be read, the header is not valid JSON
    ///   of the expected form, or any tensor's dtype, shape and byte range disagree.
    public init(contentsOf url: URL) throws(WeightFileError) {
        try self.init(bytes: readWholeFile(path: url.path), path: url.path)
    }

    /// Parses a safetensors file held in memory. `path` names it in error messages.
    public init(bytes: [UInt8], path: String) throws(WeightFileError) {
        func invalid(_ reason: String) -> WeightFileError {
            .invalidSafeTensors(path: path, reason: reason)
        }
        guard bytes.count >= 8 else {
            throw invalid("expected at least 8 bytes for the header length, found \(bytes.count)")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 {
            headerLength |= UInt64(bytes[i]) << (8 * UInt64(i))
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw invalid("header length \(headerLength) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw invalid(
                "header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
        } catch {
            throw invalid("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw invalid("header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let object = value as? [String: Any] else {
                    throw invalid("__metadata__ is not a JSON object")
                }
                for (key, item) in object {
                    guard let text = item as? String else {
                        throw invalid("__metadata__ value for '\(key)' is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, invalid: invalid))
        }

        // The data section must be covered exactly: no overlaps, no holes, nothing past the end.
        // Sorting by end as well puts an empty tensor before a tensor that starts at its offset.
        entries.sort {
            ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name)
                < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name)
        }
        let dataLength = bytes.count - dataStart
        var expectedOffset = 0
        for entry in entries {
            if entry.dataRange.lowerBound < expectedOffset {
                throw invalid("tensor '\(entry.name)' overlaps the tensor before it")
            }
            if entry.dataRange.lowerBound > expectedOffset {
                throw invalid(
                    "hole in the data section: tensor '\(entry.name)' starts at byte "
                        + "\(entry.dataRange.lowerBound), expected \(expectedOffset)")
            }
            expectedOffset = entry.dataRange.upperBound
        }
        guard expectedOffset <= dataLength else {
            throw invalid(
                "tensor data ends at byte \(expectedOffset) of the data section, "
                    + "but the file holds only \(dataLength) data bytes")
        }
        guard expectedOffset == dataLength else {
            throw invalid(
                "\(dataLength - expectedOffset) bytes after the last tensor belong to no tensor")
        }

        self.entries = entries
        self.metadata = metadata
        self.bytes = bytes
        self.dataStart = dataStart
        self.path = path
        self.indexByName = Dictionary(
            uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(
        name: String, value: Any, invalid: (String) -> WeightFileError
    ) throws(WeightFileError) -> SafeTensorsEntry {
        guard let object = value as? [String: Any] else {
            throw invalid("entry '\(name)' is not a JSON object")
        }
        guard let dtypeName = object["dtype"] as? String else {
            throw invalid("entry '\(name)' has no dtype string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw invalid("tensor '\(name)' has dtype \(dtypeName), expected F32")
        }
        guard let shapeValues = object["shape"] as? [Any] else {
            throw invalid("entry '\(name)' has no shape array")
        }
        var shape: [Int] = []
        var elementCount = 1
        for item in shapeValues {
            guard let number = item as? NSNumber, let dim = Int(exactly: number.doubleValue),
                dim >= 0
            else {
                throw invalid("tensor '\(name)' has shape \(shapeValues), expected non-negative integers")
            }
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw invalid("tensor '\(name)' has shape \(shapeValues), whose size overflows")
            }
            elementCount = product
            shape.append(dim)
        }
        guard let offsets = object["data_offsets"] as? [Any], offsets.count == 2,
            let beginNumber = offsets[0] as? NSNumber, let endNumber = offsets[1] as? NSNumber,
            let begin = Int(exactly: beginNumber.doubleValue),
            let end = Int(exactly: endNumber.doubleValue),
            begin >= 0, end >= begin
        else {
            throw invalid("tensor '\(name)' has data_offsets \(object["data_offsets"] ?? "missing"), expected [begin, end] with 0 <= begin <= end")
        }
        let expectedBytes = elementCount * dtype.byteCount
        guard end - begin == expectedBytes else {
            throw invalid(
                "tensor '\(name)' of shape \(shape) needs \(expectedBytes) bytes, "
                    + "but data_offsets [\(begin), \(end)] cover \(end - begin)")
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// Returns the entry named `name`, or nil.
    public func entry(named name: String) -> SafeTensorsEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// Copies a tensor's elements out as `Float`s (the file is little-endian, as is every
    /// platform this library builds on).
    public func floats(for entry: SafeTensorsEntry) -> [Float] {
        let start = dataStart + entry.dataRange.lowerBound
        return [Float](unsafeUninitializedCapacity: entry.elementCount) { buffer, count in
            bytes.withUnsafeBytes { raw in
                let source = UnsafeRawBufferPointer(rebasing: raw[start..<(start + entry.dataRange.count)])
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            count = entry.elementCount
        }
    }
}

/// Reads a file straight into a byte array with POSIX read, one pass. Reading through `Data`
/// and converting to `[UInt8]` would copy a 261 MB weight file a second time.
private func readWholeFile(path: String) throws(WeightFileError) -> [UInt8] {
    func failure(_ action: String) -> WeightFileError {
        .unreadable(path: path, reason: "\(action) failed: \(String(cString: strerror(errno)))")
    }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        throw failure("open")
    }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
        throw failure("fstat")
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw .unreadable(path: path, reason: "not a regular file")
    }
    let size = Int(status.st_size)
    if size == 0 {
        return []
    }
    var readError: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initializedCount in
        var total = 0
        while total < size {
            let count = read(descriptor, buffer.baseAddress! + total, size - total)
            if count < 0 && errno == EINTR {
                continue
            }
            if count <= 0 {
                readError = count < 0 ? errno : 0
                break
            }
            total += count
        }
        initializedCount = total
    }
    if readError != 0 {
        errno = readError
        throw failure("read")
    }
    // A file that shrank while being read ends early; parsing then reports what is missing.
    return bytes
}

/// Writes safetensors files. Tensors are laid out in the order they are added.
public struct SafeTensorsWriter {
    private var tensors: [(name: String, shape: [Int], values: [Float])] = []
    private var names: Set<String> = []
    /// The `__metadata__` object to write.
    public var metadata: [String: String] = [:]

    public init() {}

    /// Adds a float32 tensor. `values.count` must equal the product of `shape`.
    public mutating func add(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        precondition(!names.contains(name), "tensor '\(name)' added twice")
        precondition(name != "__metadata__", "'__metadata__' is reserved")
        names.insert(name)
        tensors.append((name, shape, values))
    }

    /// Returns the complete file as bytes.
    public func serialized() -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in tensors {
            let byteCount = tensor.values.count * 4
            header[tensor.name] = [
                "dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + byteCount],
            ] as [String: Any]
            offset += byteCount
        }
        if !metadata.isEmpty {
            header["__metadata__"] = metadata
        }
        // The header holds only strings, integers, arrays and dictionaries of them, which
        // JSONSerialization always serializes.
        var headerBytes = [UInt8](try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        // Pad the header with spaces so the data section starts 8-byte aligned.
        while headerBytes.count % 8 != 0 {
            headerBytes.append(0x20)
        }
        var output: [UInt8] = []
        output.reserveCapacity(8 + headerBytes.count + offset)
        let length = UInt64(headerBytes.count)
        for i in 0..<8 {
            output.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i))))
        }
        output.append(contentsOf: headerBytes)
        for tensor in tensors {
            tensor.values.withUnsafeBytes { output.append(contentsOf: $0) }
        }
        return output
    }

    /// Writes the file atomically: to a temporary file in the same folder, then renamed over
    /// `url`, so a failure never leaves a partial file at `url`.
    public func write(to url: URL) throws(WeightFileError) {
        try writeFileAtomically(serialized(), to: url)
    }
}

/// Writes `bytes` to a temporary file beside `url` and renames it over `url`.
///
/// - Throws: `WeightFileError.unwritable` naming `url`; the temporary file is removed.
public func writeFileAtomically(_ bytes: [UInt8], to url: URL) throws(WeightFileError) {
    guard !url.hasDirectoryPath else {
        // A trailing '/' (or an existing folder) names a folder; without this check a file
        // would be written under the folder's name.
        throw .unwritable(path: url.path, reason: "the path ends in '/' or is an existing folder; expected a file path")
    }
    let directory = url.deletingLastPathComponent()
    // Foundation reports a missing folder as "The file doesn't exist", which reads as if the
    // output file itself were expected to exist, so the folder is checked first.
    var isDirectory: ObjCBool = false
    if !FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
        throw .unwritable(path: url.path, reason: "the folder '\(directory.path)' does not exist")
    }
    if !isDirectory.boolValue {
        throw .unwritable(path: url.path, reason: "'\(directory.path)' is not a folder")
    }
    let temporary = directory.appendingPathComponent(
        ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
    do {
        try Data(bytes).write(to: temporary)
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw .unwritable(path: url.path, reason: error.localizedDescription)
    }
    // rename(2) replaces an existing file in one step. FileManager.replaceItemAt is not used:
    // in swift-corelibs-foundation (Swift 6.3.1, Linux) it fails with "The file doesn't exist"
    // whenever `url` does exist.
    guard rename(temporary.path, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw .unwritable(path: url.path, reason: reason)
    }
}
