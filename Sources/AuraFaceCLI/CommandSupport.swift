// Pieces several subcommands share: common options, model loading, image loading, JSON text.

import AuraFace
import Foundation

enum CommonOptions {
    /// Accepted --threads values, a model's thread budget (`AuraFaceModel.threadCount`). The
    /// upper bound only catches typing mistakes.
    static let threadRange = 1...1024

    static let threads = OptionSpec.value(
        "threads", "N",
        "Threads for one forward pass of the model (default: the CPUs this process may use).")
    static let verbose = OptionSpec.flag("verbose", "Print progress and details to standard error.")
    static let model = OptionSpec.value(
        "model", "FILE", "Weights converted by 'auraface convert' (.safetensors). Required.")

    static func threadCount(_ arguments: ParsedArguments) throws(UsageError) -> Int? {
        guard let text = arguments.value("threads") else { return nil }
        return try integerValue(text, option: "threads", range: threadRange)
    }

    static func modelURL(_ arguments: ParsedArguments, command: String) throws(UsageError) -> URL {
        guard let path = arguments.value("model") else {
            throw UsageError(
                "missing required option --model FILE for 'auraface \(command)'; "
                    + "see 'auraface \(command) --help'")
        }
        return URL(fileURLWithPath: path)
    }
}

/// Returns true when `a` and `b` name the same file: the same path once `.` and `..` are
/// resolved, or, when both exist, the same device and inode, which also catches symbolic
/// and hard links.
func isSameFile(_ a: URL, _ b: URL) -> Bool {
    if a.standardizedFileURL.path == b.standardizedFileURL.path {
        return true
    }
    var statusA = stat()
    var statusB = stat()
    guard stat(a.path, &statusA) == 0, stat(b.path, &statusB) == 0 else {
        return false
    }
    return statusA.st_dev == statusB.st_dev && statusA.st_ino == statusB.st_ino
}

/// Loads a weight file, noting what was loaded when `verbose` is set.
func loadModel(at url: URL, threads: Int?, verbose: Bool, console: Console) throws -> AuraFaceModel {
    let start = Date()
    let model = try AuraFaceModel(contentsOf: url, threads: threads)
    if verbose {
        let seconds = Date().timeIntervalSince(start)
        console.note(
            "loaded \(model.architecture.name) from \(url.path) in "
                + String(format: "%.2f", seconds) + " s")
        if let info = try? AuraFaceModel.blasInfo {
            console.note("OpenBLAS \(info.coreName) kernels; \(model.threadCount) threads per forward pass")
        }
    }
    return model
}

/// Reads face crops and checks that each is the model's input size, before any inference, so a
/// bad file fails the command without partial output.
///
/// - Throws: `PhotoFileError`, `PNGError`, `JPEGError` or `PPMError` naming an unreadable file,
///   `CommandFailure` naming a file of the wrong size.
func loadFaceImages(_ paths: [String], inputSize: Int) throws -> [RGBImage] {
    var images: [RGBImage] = []
    for path in paths {
        let url = URL(fileURLWithPath: path)
        let image = try PhotoFile.read(contentsOf: url)
        guard image.width == inputSize, image.height == inputSize else {
            throw CommandFailure(
                "'\(url.path)': "
                    + ImageInputError.sizeMismatch(expected: inputSize, width: image.width, height: image.height)
                    .description)
        }
        images.append(image)
    }
    return images
}

/// Runs the model on face crops in chunks of `batchSize` images per forward pass and calls
/// `body` with each chunk's first index and raw embeddings, in order.
func embedFaces(
    _ images: [RGBImage], model: AuraFaceModel, batchSize: Int,
    body: (_ firstIndex: Int, _ embeddings: [[Float]]) throws -> Void
) throws {
    var first = 0
    while first < images.count {
        let chunk = Array(images[first..<min(first + batchSize, images.count)])
        let input = try RGBImage.normalizedBatch(chunk, metadata: model.metadata)
        let embeddings = try model.rawEmbeddings(normalizedInput: input, batchSize: chunk.count)
        try body(first, embeddings)
        first += chunk.count
    }
}

/// Computes the Euclidean norm, accumulated in Double.
func l2Norm(_ vector: [Float]) -> Double {
    vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
}

enum JSONText {
    /// Quotes `text` as a JSON string literal, escaping quotes, backslashes and control
    /// characters.
    static func string(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                output += String(format: "\\u%04x", scalar.value)
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }

    /// Formats `value` as the shortest decimal text that reads back as the same Float, which
    /// JSON accepts for every finite value (Swift writes exponents as `1e-05`).
    static func number(_ value: Float) -> String {
        precondition(value.isFinite, "JSON has no NaN or infinity")
        return "\(value)"
    }

    static func number(_ value: Double) -> String {
        precondition(value.isFinite, "JSON has no NaN or infinity")
        return "\(value)"
    }

    static func array(_ values: [Float]) -> String {
        "[" + values.map(number).joined(separator: ",") + "]"
    }
}

/// Describes a Foundation file error by its POSIX reason ("No such file or directory") rather
/// than Foundation's "Error Domain=NSCocoaErrorDomain Code=..." text.
func describeFileError(_ error: any Error) -> String {
    if let failure = error as? FileReadFailure {
        return failure.reason
    }
    let nsError = error as NSError
    guard nsError.domain == NSCocoaErrorDomain || nsError.domain == NSPOSIXErrorDomain else {
        // A typed error of this project already states what failed.
        return String(describing: error)
    }
    if nsError.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(nsError.code)))
    }
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
        underlying.domain == NSPOSIXErrorDomain
    {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if let cocoa = error as? CocoaError {
        switch cocoa.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "No such file or directory"
        case .fileWriteFileExists: return "a file with this name already exists"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteOutOfSpace: return "no space left on the device"
        default: break
        }
    }
    return nsError.localizedDescription
}

/// Checks on the paths that commands write to, made before any work so that a bad path fails
/// the command quickly and leaves no partial output.
enum OutputPath {
    /// Describes what is at `path` when it exists and is not a regular file, or returns nil.
    static func nonRegularKind(_ path: String) -> String? {
        // stat follows symbolic links, so a link is judged by its target.
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        switch status.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// Rejects `-`, which some tools read as standard output, since `option` writes only to a
    /// named file.
    static func rejectStandardOutput(_ path: String, option: String) throws(UsageError) {
        guard path != "-" else {
            throw UsageError(
                "\(option) '-': writing to standard output is not supported for \(option); "
                    + "give a file path")
        }
    }

    /// Checks that a file can be created at `url`: its folder exists, and nothing but a
    /// regular file is already there.
    ///
    /// - Throws: `CommandFailure` naming the missing folder or what is at `url`.
    static func checkFileDestination(_ url: URL, option: String) throws {
        let folder = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw CommandFailure(
                "the folder '\(folder.path)' of \(option) '\(url.path)' does not exist; create it first")
        }
        guard isDirectory.boolValue else {
            throw CommandFailure(
                "\(option) '\(url.path)': '\(folder.path)' is a file, expected a folder")
        }
        if let kind = nonRegularKind(url.path) {
            throw CommandFailure(
                "\(option) '\(url.path)' is \(kind), expected a regular file path to write")
        }
    }

    /// Creates the folder `url` for `option` unless it exists, after checking that no file
    /// is in its place.
    ///
    /// - Throws: `CommandFailure` when a file is at `url` or the folder cannot be created.
    static func prepareFolder(_ url: URL, option: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CommandFailure(
                    "\(option) '\(url.path)' is an existing file, expected a folder to write into")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure(
                "cannot create the folder '\(url.path)' for \(option): \(describeFileError(error))")
        }
    }
}
