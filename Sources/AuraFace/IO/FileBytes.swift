import Foundation

/// Why `readFileBytes(_:)` could not read a file. Each reader wraps it in its own typed error,
/// which names the file.
enum FileReadFailure: Error {
    case notFound
    case failed(reason: String)
}

/// Reads a whole file into memory. A folder fails with the reason "it is a directory".
func readFileBytes(_ url: URL) throws(FileReadFailure) -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
        throw .notFound
    }
    guard !isDirectory.boolValue else {
        throw .failed(reason: "it is a directory")
    }
    do {
        return [UInt8](try Data(contentsOf: url))
    } catch {
        throw .failed(reason: error.localizedDescription)
    }
}
