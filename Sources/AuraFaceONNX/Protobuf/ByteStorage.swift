import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Read-only bytes at a fixed address: a memory-mapped file or an owned copy.
///
/// The protobuf reader and the ONNX tensors keep byte ranges into one `ByteStorage`
/// instead of copying fields out. A 261 MB model is then read once, through the page
/// cache, and each tensor is copied only when its values are converted to `[Float]`.
///
/// NOTE: a mapped file that another process truncates while it is mapped makes the next
/// read of the lost pages crash with SIGBUS. Converting a file that is being rewritten is
/// not supported.
public final class ByteStorage: @unchecked Sendable {
    // The class is Sendable because `bytes` is never written after init and is freed only in deinit.

    /// The bytes. Valid for as long as this object lives.
    public let bytes: UnsafeRawBufferPointer

    private enum Ownership {
        case allocated
        case mapped
        case none
    }

    private let ownership: Ownership

    /// The number of bytes.
    public var count: Int { bytes.count }

    /// Copies `source` into new storage.
    public init(copying source: some Collection<UInt8>) {
        if source.isEmpty {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            ownership = .none
            return
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 16)
        _ = buffer.initializeMemory(as: UInt8.self, from: source)
        bytes = UnsafeRawBufferPointer(buffer)
        ownership = .allocated
    }

    /// Maps the file at `url` read-only into memory.
    ///
    /// - Throws: `MappingError` with the path and the system's reason when the file cannot
    ///   be opened, is not a regular file, or cannot be mapped.
    public init(mappingFileAt url: URL) throws(MappingError) {
        let path = url.path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw MappingError(path: path, reason: Self.systemError())
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw MappingError(path: path, reason: Self.systemError())
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw MappingError(path: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        if size == 0 {
            // mmap rejects a zero length, and there is nothing to map.
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            ownership = .none
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0),
            address != UnsafeMutableRawPointer(bitPattern: -1)
        else {
            throw MappingError(path: path, reason: Self.systemError())
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        ownership = .mapped
    }

    deinit {
        switch ownership {
        case .allocated:
            bytes.deallocate()
        case .mapped:
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        case .none:
            break
        }
    }

    /// Returns the bytes in `range`, which must lie inside the storage.
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(
            range.lowerBound >= 0 && range.upperBound <= bytes.count,
            "range \(range) outside \(bytes.count) bytes")
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Decodes the bytes in `range` as UTF-8, replacing invalid sequences with U+FFFD.
    public func string(_ range: Range<Int>) -> String {
        String(decoding: slice(range), as: UTF8.self)
    }

    private static func systemError() -> String {
        String(cString: strerror(errno))
    }

    /// A file that could not be opened or mapped.
    public struct MappingError: Error, Equatable, CustomStringConvertible {
        public var path: String
        public var reason: String

        public var description: String {
            "cannot read '\(path)': \(reason)"
        }
    }
}
