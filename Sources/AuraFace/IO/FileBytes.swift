import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The reason a file could not be opened or read as a regular file. Each reader wraps it in
/// its own typed error, which names the file.
public enum FileReadFailure: Error, Equatable {
    /// Nothing exists at the path.
    case notFound
    /// The path names something other than a regular file (a folder, FIFO, device or socket),
    /// or the read failed. `reason` describes which.
    case failed(reason: String)

    /// The reason as a sentence fragment for an error message.
    public var reason: String {
        switch self {
        case .notFound: String(cString: strerror(ENOENT))
        case let .failed(reason): reason
        }
    }
}

/// Returns the reason given when `mode` (an `st_mode`) is not a regular file, naming what it is.
func notRegularFileReason(mode: mode_t) -> String {
    let found =
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "a file of type \(String(mode & S_IFMT, radix: 8))"
        }
    return "expected a regular file, found \(found)"
}

/// Opens the regular file at `path` for reading and returns its descriptor (close it) and
/// its size from fstat. Symbolic links are followed.
///
/// The path is checked with stat before it is opened, so a device is never opened and a
/// socket gets a clear reason instead of open's ENXIO. The open uses O_NONBLOCK: opening a
/// FIFO without it waits forever for a writer, and a FIFO swapped in between stat and open
/// must still fail fast. Reads from a regular file ignore O_NONBLOCK.
///
/// - Throws: `FileReadFailure.notFound` when nothing exists at `path`, `.failed` when it is
///   not a regular file (the reason names what it is) or cannot be opened.
public func openRegularFile(atPath path: String) throws(FileReadFailure) -> (descriptor: Int32, size: Int) {
    var status = stat()
    guard stat(path, &status) == 0 else {
        if errno == ENOENT {
            throw .notFound
        }
        throw .failed(reason: String(cString: strerror(errno)))
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw .failed(reason: notRegularFileReason(mode: status.st_mode))
    }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard descriptor >= 0 else {
        if errno == ENOENT {
            throw .notFound
        }
        throw .failed(reason: "open failed: \(String(cString: strerror(errno)))")
    }
    guard fstat(descriptor, &status) == 0 else {
        let reason = "fstat failed: \(String(cString: strerror(errno)))"
        close(descriptor)
        throw .failed(reason: reason)
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        close(descriptor)
        throw .failed(reason: notRegularFileReason(mode: status.st_mode))
    }
    return (descriptor, Int(status.st_size))
}

/// Returns the current size of the open file `descriptor` from fstat, or nil when fstat fails.
public func currentFileSize(_ descriptor: Int32) -> Int? {
    var status = stat()
    return fstat(descriptor, &status) == 0 ? Int(status.st_size) : nil
}

/// Reads a whole regular file into memory in one pass, sized from fstat. A folder, FIFO,
/// device or socket fails at once with a reason that names what it is, where
/// `Data(contentsOf:)` would block on a FIFO or read a device without end.
///
/// - Throws: `FileReadFailure` as `openRegularFile(atPath:)` does, and `.failed` when a read fails.
public func readFileBytes(_ url: URL) throws(FileReadFailure) -> [UInt8] {
    let (descriptor, size) = try openRegularFile(atPath: url.path)
    defer { close(descriptor) }
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
        throw .failed(reason: "read failed: \(String(cString: strerror(readError)))")
    }
    // A file that shrank while being read ends early; the format's parser then reports
    // what is missing.
    return bytes
}
