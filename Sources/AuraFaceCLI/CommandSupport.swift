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
