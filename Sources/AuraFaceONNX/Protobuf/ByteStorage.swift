import AuraFace
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Read-only bytes at a fixed address, owned by this object.
///
/// The protobuf reader and the ONNX tensors keep byte ranges into one `ByteStorage`
/// instead of copying fields out. A 261 MB model is read into memory once, and each tensor
/// is copied again only when its values are converted to `[Float]`.
///
/// Files are read, never memory-mapped, because a mapped file that another process truncates
/// makes the next read of the lost pages kill this process with SIGBUS. A file that is
/// truncated or replaced after it was read changes nothing here.
public final class ByteStorage: @unchecked Sendable {
    // The class is Sendable because `bytes` is never written after init and is freed only in deinit.

    /// The bytes. Valid for as long as this object lives.
    public let bytes: UnsafeRawBufferPointer

    /// The number of bytes.
    public var count: Int { bytes.count }

    /// Copies `source` into new storage.
    public init(copying source: some Collection<UInt8>) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 16)
        _ = buffer.initializeMemory(as: UInt8.self, from: source)
        bytes = UnsafeRawBufferPointer(buffer)
    }

    /// Reads the whole file at `url` into memory.
    ///
    /// The buffer is sized from the file's size as `fstat` reports it, never from a size that
    /// the file's contents declare.
    ///
    /// - Throws: `ReadError.failed` with the path and the system's reason when the file cannot
    ///   be opened or read or is not a regular file, and `.tooShort` when the file shrinks
    ///   while it is being read.
    public convenience init(readingFileAt url: URL) throws(ReadError) {
        try self.init(readingFileAt: url, offset: 0, count: nil)
    }

    /// Reads `count` bytes starting at byte `offset` of the file at `url`.
    ///
    /// The file's size is checked before anything is allocated, so an offset or count taken
    /// from untrusted metadata cannot make this allocate more than the file holds.
    ///
    /// - Throws: `ReadError.tooShort` when the file ends before `offset + count`, and
    ///   `.failed` as `init(readingFileAt:)` does.
    public convenience init(readingFileAt url: URL, offset: Int, count: Int) throws(ReadError) {
        try self.init(readingFileAt: url, offset: offset, count: Optional(count))
    }

    private init(readingFileAt url: URL, offset: Int, count requestedCount: Int?) throws(ReadError) {
        let path = url.path
        // openRegularFile rejects FIFOs, devices and sockets without blocking on them.
        let descriptor: Int32
        let fileSize: Int
        do {
            (descriptor, fileSize) = try openRegularFile(atPath: path)
        } catch {
            throw .failed(path: path, reason: error.reason)
        }
        defer { close(descriptor) }

        let count = requestedCount ?? fileSize
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !overflow, end <= fileSize else {
            throw .tooShort(path: path, fileSize: fileSize, needed: overflow ? Int.max : end)
        }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        var total = 0
        var readError: Int32 = 0
        while total < count {
            let result = pread(
                descriptor, buffer.baseAddress! + total, count - total, off_t(offset + total))
            if result < 0 && errno == EINTR {
                continue
            }
            if result <= 0 {
                readError = result < 0 ? errno : 0
                break
            }
            total += result
        }
        if readError != 0 {
            buffer.deallocate()
            throw .failed(path: path, reason: String(cString: strerror(readError)))
        }
        guard total == count else {
            // The file shrank between fstat and the last read: report its size now.
            buffer.deallocate()
            throw .tooShort(path: path, fileSize: currentFileSize(descriptor) ?? offset + total, needed: end)
        }
        bytes = UnsafeRawBufferPointer(buffer)
    }

    deinit {
        bytes.deallocate()
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

    /// A file that could not be read, or that ends before the bytes requested.
    public enum ReadError: Error, Equatable, CustomStringConvertible {
        /// The file could not be opened or read, or is not a regular file.
        case failed(path: String, reason: String)
        /// The file has `fileSize` bytes, fewer than the `needed` that the read must reach.
        case tooShort(path: String, fileSize: Int, needed: Int)

        /// The file's path.
        public var path: String {
            switch self {
            case let .failed(path, _), let .tooShort(path, _, _): path
            }
        }

        /// The reason the read failed, without the path.
        public var reason: String {
            switch self {
            case let .failed(_, reason):
                reason
            case let .tooShort(_, fileSize, needed):
                "the file has \(fileSize) bytes, expected at least \(needed)"
            }
        }

        public var description: String {
            "cannot read '\(path)': \(reason)"
        }
    }
}
