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

/// A parsed and validated safetensors header: the tensors' entries and the metadata.
struct SafeTensorsHeader: Sendable {
    /// Entries in file order (sorted by data offset).
    let entries: [SafeTensorsEntry]
    /// The `__metadata__` object, or empty when the file has none.
    let metadata: [String: String]
    /// The file offset of the data section's first byte.
    let dataStart: Int
    private let indexByName: [String: Int]

    /// Parses the header of a file of `fileSize` bytes and checks that its tensors cover the
    /// data section exactly. `path` names the file in errors.
    ///
    /// `read` returns the file's bytes in a range. It is called twice, for the 8-byte header
    /// length and then for the header, each time after the range was checked against
    /// `fileSize` and the header size limit, and never for a tensor's data.
    init(
        fileSize: Int, path: String, read: (Range<Int>) throws(WeightFileError) -> ArraySlice<UInt8>
    ) throws(WeightFileError) {
        func invalid(_ reason: String) -> WeightFileError {
            .invalidSafeTensors(path: path, reason: reason)
        }
        guard fileSize >= 8 else {
            throw invalid("expected at least 8 bytes for the header length, found \(fileSize)")
        }
        var headerLength: UInt64 = 0
        for (i, byte) in try read(0..<8).enumerated() {
            headerLength |= UInt64(byte) << (8 * UInt64(i))
        }
        guard headerLength <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw invalid(
                "header length \(headerLength) exceeds the limit of \(SafeTensorsFile.maxHeaderBytes) bytes")
        }
        guard headerLength <= UInt64(fileSize - 8) else {
            throw invalid(
                "header length \(headerLength) runs past the end of the file (\(fileSize) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = Data(try read(8..<dataStart))
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
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
        let dataLength = fileSize - dataStart
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
        self.dataStart = dataStart
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
    func entry(named name: String) -> SafeTensorsEntry? {
        indexByName[name].map { entries[$0] }
    }
}

/// A parsed safetensors file held in memory: its header entries, its metadata and its bytes.
///
/// The whole file is read into memory once, and opening it costs that read plus the JSON
/// header parse. `floats(for:)` copies a tensor's values out of the buffer.
/// `AuraFaceModel(contentsOf:)` does not use this type: to keep its peak memory low, it reads
/// the header alone and then one tensor at a time.
public struct SafeTensorsFile: Sendable {
    /// The largest header this reader accepts. A real IResNet-100 header is about 40 KB.
    public static let maxHeaderBytes = 100 * 1024 * 1024

    let header: SafeTensorsHeader
    /// Entries in file order (sorted by data offset).
    public var entries: [SafeTensorsEntry] { header.entries }
    /// The `__metadata__` object, or empty when the file has none.
    public var metadata: [String: String] { header.metadata }
    /// The file's bytes: header and data.
    public let bytes: [UInt8]
    /// The offset in `bytes` of the data section's first byte.
    public var dataStart: Int { header.dataStart }
    /// The file the bytes came from, for error messages.
    public let path: String

    /// Reads and validates a safetensors file.
    ///
    /// - Throws: `WeightFileError` when the file cannot be read, the header is not valid JSON
    ///   of the expected form, or any tensor's dtype, shape and byte range disagree.
    public init(contentsOf url: URL) throws(WeightFileError) {
        try self.init(bytes: readWholeFile(path: url.path), path: url.path)
    }

    /// Parses a safetensors file held in memory. `path` names it in error messages.
    public init(bytes: [UInt8], path: String) throws(WeightFileError) {
        header = try SafeTensorsHeader(fileSize: bytes.count, path: path) { range in bytes[range] }
        self.bytes = bytes
        self.path = path
    }

    /// Returns the entry named `name`, or nil.
    public func entry(named name: String) -> SafeTensorsEntry? {
        header.entry(named: name)
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

/// A safetensors file on disk whose header has been parsed and checked, and whose tensors are
/// read one at a time with pread, so the data section is never held in memory as a whole.
///
/// The file is read, never mapped: a mapped file truncated by another process would kill
/// this one with SIGBUS. The descriptor stays open only inside `withOpened(path:_:)`.
struct SafeTensorsFileReader {
    let header: SafeTensorsHeader
    let path: String
    private let descriptor: Int32
    private let scratch = ScratchBuffer()

    /// Opens the file at `path`, parses and checks its header against the file's size from
    /// fstat (reading only the header's bytes), calls `body`, and closes the file.
    ///
    /// - Throws: `WeightFileError.unreadable` when the file cannot be opened or read or is not
    ///   a regular file, `.invalidSafeTensors` as `SafeTensorsFile(bytes:path:)` does, and
    ///   whatever `body` throws.
    static func withOpened<R>(
        path: String, _ body: (SafeTensorsFileReader) throws(WeightFileError) -> R
    ) throws(WeightFileError) -> R {
        let descriptor: Int32
        let fileSize: Int
        do {
            (descriptor, fileSize) = try openRegularFile(atPath: path)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
        defer { close(descriptor) }
        let header = try SafeTensorsHeader(fileSize: fileSize, path: path) {
            range throws(WeightFileError) in
            var (byteCount, readError) = (0, Int32(0))
            let bytes = [UInt8](unsafeUninitializedCapacity: range.count) { buffer, count in
                (byteCount, readError) = readFully(
                    descriptor, into: UnsafeMutableRawBufferPointer(buffer), at: range.lowerBound)
                count = byteCount
            }
            guard byteCount == range.count else {
                throw readFailure(
                    path: path, descriptor: descriptor, what: "the header", range: range, error: readError)
            }
            return bytes[...]
        }
        return try body(SafeTensorsFileReader(header: header, path: path, descriptor: descriptor))
    }

    /// Reads a tensor's elements as `Float`s (the file is little-endian, as is every platform
    /// this library builds on).
    ///
    /// - Throws: `WeightFileError.unreadable` when the read fails or the file has become
    ///   shorter than its header says since it was opened.
    func floats(for entry: SafeTensorsEntry) throws(WeightFileError) -> [Float] {
        var failure: WeightFileError?
        let values = [Float](unsafeUninitializedCapacity: entry.elementCount) { buffer, count in
            failure = read(entry, into: UnsafeMutableRawBufferPointer(buffer))
            count = failure == nil ? entry.elementCount : 0
        }
        if let failure {
            throw failure
        }
        return values
    }

    /// Reads a tensor into a scratch buffer that this reader reuses for every call, and calls
    /// `body` with its elements, which are valid only during the call. Reusing one buffer
    /// keeps the freed buffers of the many tensors read during a load from staying in the
    /// heap as resident memory.
    ///
    /// - Throws: what `floats(for:)` throws.
    func withFloats<R>(
        of entry: SafeTensorsEntry, _ body: (UnsafeBufferPointer<Float>) -> R
    ) throws(WeightFileError) -> R {
        let bytes = scratch.reserve(byteCount: entry.dataRange.count)
        if let failure = read(entry, into: bytes) {
            throw failure
        }
        let floats = bytes.bindMemory(to: Float.self)
        return body(UnsafeBufferPointer(floats))
    }

    /// Reads a tensor's bytes into `buffer`, which has room for exactly that many, and returns
    /// the error of a failed or short read.
    private func read(_ entry: SafeTensorsEntry, into buffer: UnsafeMutableRawBufferPointer) -> WeightFileError? {
        let start = header.dataStart + entry.dataRange.lowerBound
        let (byteCount, readError) = readFully(descriptor, into: buffer, at: start)
        guard byteCount == entry.dataRange.count else {
            return readFailure(
                path: path, descriptor: descriptor, what: "tensor '\(entry.name)'",
                range: start..<(start + entry.dataRange.count), error: readError)
        }
        return nil
    }
}

/// A byte buffer that grows to the largest size requested and is freed with its owner.
private final class ScratchBuffer {
    private var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// Returns the first `byteCount` bytes of the buffer, reallocating it when it is smaller.
    /// Earlier contents are not kept.
    func reserve(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        if storage.count < byteCount {
            storage.deallocate()
            storage = .allocate(byteCount: byteCount, alignment: MemoryLayout<Float>.alignment)
        }
        return UnsafeMutableRawBufferPointer(rebasing: storage[0..<byteCount])
    }

    deinit {
        storage.deallocate()
    }
}

/// Returns the error for a read of `range` that failed with `error` (an errno value), or that
/// ended early when `error` is 0. The size reported is the file's size from fstat now, not
/// where the read stopped.
private func readFailure(
    path: String, descriptor: Int32, what: String, range: Range<Int>, error: Int32
) -> WeightFileError {
    if error != 0 {
        return .unreadable(path: path, reason: "reading \(what) failed: \(String(cString: strerror(error)))")
    }
    let size = currentFileSize(descriptor).map { "\($0) bytes" } ?? "an unknown size (fstat failed)"
    return .unreadable(
        path: path,
        reason: "\(what) needs bytes \(range.lowerBound)..<\(range.upperBound), but the file now has "
            + "\(size): it shrank after it was opened")
}

/// Reads `buffer.count` bytes at `offset` with pread, retrying after signals and short reads.
/// Returns the bytes read (fewer at the end of the file) and 0, or the errno of a failed read.
private func readFully(
    _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int
) -> (count: Int, error: Int32) {
    var total = 0
    while total < buffer.count {
        let count = pread(descriptor, buffer.baseAddress! + total, buffer.count - total, off_t(offset + total))
        if count < 0 && errno == EINTR {
            continue
        }
        if count < 0 {
            return (total, errno)
        }
        if count == 0 {
            break
        }
        total += count
    }
    return (total, 0)
}

/// Reads a whole regular file into a byte array with POSIX read, one pass. Reading through
/// `Data` and converting to `[UInt8]` would copy a 261 MB weight file a second time.
private func readWholeFile(path: String) throws(WeightFileError) -> [UInt8] {
    do {
        return try readFileBytes(URL(fileURLWithPath: path))
    } catch {
        throw .unreadable(path: path, reason: error.reason)
    }
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

/// Writes `bytes` to a temporary file beside the target and renames it over the target, so
/// a failure never leaves a partial file in its place.
///
/// Only regular files are replaced. When `url` exists and is a folder, FIFO, device, socket
/// or a symbolic link to one of them, nothing is written: renaming over `/dev/null` would
/// replace the device with a regular file. When `url` is a symbolic link to a regular file,
/// the link is kept and the file it points to (fully resolved) is replaced atomically, as a
/// plain write through the link would change that file. A symbolic link whose target does
/// not exist is rejected, because it is unclear whether the link or its target was meant.
///
/// - Throws: `WeightFileError.unwritable` naming `url`, saying what was expected and what was
///   found; the temporary file is removed.
public func writeFileAtomically(_ bytes: [UInt8], to url: URL) throws(WeightFileError) {
    guard !url.hasDirectoryPath else {
        // A trailing '/' (or an existing folder) names a folder; without this check a file
        // would be written under the folder's name.
        throw .unwritable(path: url.path, reason: "the path ends in '/' or is an existing folder; expected a file path")
    }
    let target = try resolveWriteTarget(url)
    let directory = target.deletingLastPathComponent()
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
        ".\(target.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier)."
            + "\(UInt32.random(in: 0...UInt32.max)).tmp")
    // O_EXCL: the temporary name must be a new regular file, never something already there
    // (a FIFO at that name would block the open).
    let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    guard descriptor >= 0 else {
        throw .unwritable(
            path: url.path,
            reason: "cannot create the temporary file '\(temporary.path)': \(String(cString: strerror(errno)))")
    }
    var writeError: Int32 = 0
    bytes.withUnsafeBytes { raw in
        var total = 0
        while total < raw.count {
            let count = write(descriptor, raw.baseAddress! + total, raw.count - total)
            if count < 0 && errno == EINTR {
                continue
            }
            if count <= 0 {
                writeError = count < 0 ? errno : EIO
                return
            }
            total += count
        }
    }
    if close(descriptor) != 0 && writeError == 0 {
        writeError = errno
    }
    guard writeError == 0 else {
        unlink(temporary.path)
        throw .unwritable(path: url.path, reason: "write failed: \(String(cString: strerror(writeError)))")
    }
    // rename(2) replaces an existing file in one step. FileManager.replaceItemAt is not used:
    // in swift-corelibs-foundation (Swift 6.3.1, Linux) it fails with "The file doesn't exist"
    // whenever `url` does exist.
    guard rename(temporary.path, target.path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary.path)
        throw .unwritable(path: url.path, reason: reason)
    }
}

/// Returns the path `writeFileAtomically` renames onto: `url` itself when nothing exists
/// there or it is a regular file, the fully resolved target when it is a symbolic link to a
/// regular file.
///
/// - Throws: `WeightFileError.unwritable` when `url` or the link's target is not a regular
///   file, or the link's target does not exist.
private func resolveWriteTarget(_ url: URL) throws(WeightFileError) -> URL {
    var status = stat()
    guard lstat(url.path, &status) == 0 else {
        // Nothing exists there yet, or a parent is not a folder. The folder check in the caller
        // reports the second case.
        if errno == ENOENT || errno == ENOTDIR {
            return url
        }
        throw .unwritable(path: url.path, reason: "lstat failed: \(String(cString: strerror(errno)))")
    }
    switch status.st_mode & S_IFMT {
    case S_IFREG:
        return url
    case S_IFLNK:
        guard stat(url.path, &status) == 0, let resolved = realpath(url.path, nil) else {
            throw .unwritable(
                path: url.path,
                reason: "it is a symbolic link whose target cannot be resolved "
                    + "(\(String(cString: strerror(errno)))); expected a regular file or a new path")
        }
        defer { free(resolved) }
        let resolvedPath = String(cString: resolved)
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw .unwritable(
                path: url.path,
                reason: "it is a symbolic link to '\(resolvedPath)', which is not replaced: "
                    + notRegularFileReason(mode: status.st_mode))
        }
        return URL(fileURLWithPath: resolvedPath)
    default:
        throw .unwritable(
            path: url.path,
            reason: "it exists and is not replaced: \(notRegularFileReason(mode: status.st_mode))")
    }
}
