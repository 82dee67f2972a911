// `auraface eval`: InsightFace's 10-fold face-verification protocol on .bin sets (LFW, CFP-FP,
// AgeDB-30, CALFW, CPLFW), the benchmark behind ArcFace model cards' accuracy tables.

import AuraFace
import AuraFaceONNX
import Foundation

enum EvalCommand {
    /// Images per forward pass unless --batch-size sets another value. Each pass also runs
    /// the images' mirrors, in a second pass of the same size.
    static let defaultBatchSize = 32

    static let spec = CommandSpec(
        name: "eval",
        summary: "Measure verification accuracy on InsightFace .bin sets (LFW, CFP-FP, AgeDB-30, ...).",
        usage: [
            "--model FILE [--roc DIR] [--batch-size N] [--cache DIR | --no-cache] [--threads N] FILE.bin..."
        ],
        discussion: """
            Each FILE.bin is a face-verification set in InsightFace's format: a pickled tuple of \
            2P encoded 112x112 face crops (JPEG or PNG) and P same/different labels, as lfw.bin, \
            cfp_fp.bin, agedb_30.bin, calfw.bin and cplfw.bin in InsightFace's training-data \
            packages. The protocol is that of InsightFace's verification.py. Each image and its \
            horizontal mirror are embedded, and the sum of their raw embeddings is \
            L2-normalized. A pair's distance is the squared Euclidean distance. On each of 10 \
            contiguous folds, the threshold (0.00 to 3.99 in steps of 0.01) with the best \
            accuracy on the other nine folds is scored. The table lists the accuracy mean and population standard \
            deviation over folds, the thresholds chosen (one value when all folds agree), \
            VAL at FAR = 1e-3 with its standard deviation and measured FAR, and the mean norm \
            of the raw embeddings.

            Embeddings are cached per weight file and set (keyed by the SHA-256 of the weight \
            file and of the set's images and labels), so a second run only repeats the protocol. The default cache folder is \
            $XDG_CACHE_HOME/auraface/eval, or ~/.cache/auraface/eval.
            """,
        positionals: [
            PositionalSpec(
                name: "FILE.bin", help: "Verification set in InsightFace's .bin format.",
                repeats: true, optional: false)
        ],
        options: [
            CommonOptions.model,
            .value("roc", "DIR", "Write each set's ROC curve to DIR/NAME_roc.png (FPR across, TPR up)."),
            .value("batch-size", "N", "Images per forward pass (default \(defaultBatchSize))."),
            .value("cache", "DIR", "Folder for cached embeddings (default: see above)."),
            .flag("no-cache", "Neither read nor write cached embeddings."),
            CommonOptions.threads,
            CommonOptions.verbose,
        ])

    static let command = Command(spec: spec, run: run)

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let modelURL = try CommonOptions.modelURL(arguments, command: "eval")
        let threads = try CommonOptions.threadCount(arguments)
        let batchSize = try arguments.value("batch-size").map { text throws(UsageError) in
            try integerValue(text, option: "batch-size", range: 1...4096)
        } ?? defaultBatchSize
        let verbose = arguments.flag("verbose")
        if arguments.flag("no-cache"), arguments.value("cache") != nil {
            throw UsageError("--cache and --no-cache cannot be combined")
        }
        let cacheDirectory = arguments.flag("no-cache") ? nil : cacheFolder(arguments.value("cache"))
        let rocDirectory = arguments.value("roc").map { URL(fileURLWithPath: $0) }
        if let rocDirectory {
            // Checked before the evaluation, which can take minutes, rather than after it.
            try OutputPath.rejectStandardOutput(arguments.value("roc") ?? "", option: "--roc")
            try OutputPath.prepareFolder(rocDirectory, option: "--roc")
        }
        let showProgress = isatty(STDERR_FILENO) != 0

        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        let weightsKey = cacheDirectory == nil ? "" : try fileDigest(modelURL)

        var rows: [[String]] = []
        for path in arguments.positionals {
            let url = URL(fileURLWithPath: path)
            let name = url.deletingPathExtension().lastPathComponent
            let set = try VerificationSet(bytes: try readFile(url), path: url.path)

            var cacheURL: URL?
            if let cacheDirectory {
                let setKey = contentDigest(set)
                cacheURL = cacheDirectory.appendingPathComponent(
                    "\(weightsKey.prefix(32))-\(setKey.prefix(32)).npy")
            }
            let embeddings: VerificationEmbeddings
            if let cacheURL, let cached = readCache(cacheURL, set: set, model: model) {
                embeddings = cached
                if verbose {
                    console.note("\(name): embeddings read from \(cacheURL.path)")
                }
            } else {
                let bar = ProgressBar(label: name, enabled: showProgress, console: console)
                embeddings = try set.embeddings(model: model, batchSize: batchSize) { done, total in
                    bar.update(done, of: total)
                }
                bar.finish()
                if let cacheURL {
                    writeCache(embeddings, to: cacheURL, console: console)
                }
            }

            let report = try set.evaluate(embeddings)
            rows.append(row(name: name, report: report))
            if let rocDirectory {
                let rocURL = rocDirectory.appendingPathComponent("\(name)_roc.png")
                try OutputPath.prepareFolder(rocDirectory, option: "--roc")
                let image = ROCPlot.image(
                    falsePositiveRates: report.result.falsePositiveRates,
                    truePositiveRates: report.result.truePositiveRates)
                try PNGImage.write(image, to: rocURL)
                if verbose {
                    console.note("\(name): ROC curve written to \(rocURL.path)")
                }
            }
        }
        for line in table(rows) {
            try console.print(line)
        }
    }

    static let header = ["set", "pairs", "accuracy", "threshold", "VAL@FAR=1e-3", "FAR", "mean norm"]

    /// Formats one table row. Accuracy and VAL carry 5 decimals as InsightFace prints them.
    static func row(name: String, report: VerificationReport) -> [String] {
        let result = report.result
        let thresholds = result.foldThresholds.map { String(format: "%.2f", $0) }
        let thresholdText = Set(thresholds).count == 1 ? thresholds[0] : thresholds.joined(separator: ",")
        return [
            name,
            "\(report.pairCount)",
            String(format: "%.5f ± %.5f", result.accuracyMean, result.accuracyStandardDeviation),
            thresholdText,
            String(format: "%.5f ± %.5f", result.validationRate, result.validationRateStandardDeviation),
            String(format: "%.5f", result.falseAcceptRate),
            String(format: "%.4f", report.meanNorm),
        ]
    }

    /// Lays out rows under the header in left-aligned columns separated by two spaces.
    static func table(_ rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { cells in
            zip(cells, widths).enumerated().map { column, pair in
                let (cell, width) = pair
                return column == cells.count - 1 ? cell : cell.padding(toLength: width, withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }

    // MARK: - Embedding cache

    static func cacheFolder(_ option: String?) -> URL {
        if let option {
            return URL(fileURLWithPath: option)
        }
        let environment = ProcessInfo.processInfo.environment
        if let base = environment["XDG_CACHE_HOME"], !base.isEmpty {
            return URL(fileURLWithPath: base).appendingPathComponent("auraface/eval")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/auraface/eval")
    }

    /// Reads a cached [2, images, embedding size] array: originals, then mirrors. Returns nil
    /// when the file is missing or does not fit this set and model, so it is recomputed.
    static func readCache(_ url: URL, set: VerificationSet, model: AuraFaceModel) -> VerificationEmbeddings? {
        guard FileManager.default.fileExists(atPath: url.path),
            let array = try? NpyArray(contentsOf: url)
        else {
            return nil
        }
        let count = set.encodedImages.count
        let size = model.architecture.embeddingSize
        guard array.shape == [2, count, size] else { return nil }
        let rows = (0..<(2 * count)).map { index in
            Array(array.values[(index * size)..<((index + 1) * size)])
        }
        return VerificationEmbeddings(original: Array(rows[..<count]), mirrored: Array(rows[count...]))
    }

    /// Writes the cache entry; a failure is reported and the run goes on without it.
    static func writeCache(_ embeddings: VerificationEmbeddings, to url: URL, console: Console) {
        let vectors = embeddings.original + embeddings.mirrored
        let size = vectors.first?.count ?? 0
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let array = try NpyArray(
                shape: [2, embeddings.original.count, size], values: vectors.flatMap { $0 })
            try array.write(to: url)
        } catch {
            console.note("warning: embeddings not cached at \(url.path): \(error)")
        }
    }

    /// Returns the SHA-256 of a set's content: each encoded image with its length, then the
    /// labels. The same set pickled in another layout or protocol gets the same key, so its
    /// embeddings are reused.
    static func contentDigest(_ set: VerificationSet) -> String {
        var hasher = SHA256()
        for image in set.encodedImages {
            var length = UInt64(image.count).littleEndian
            withUnsafeBytes(of: &length) { hasher.update($0) }
            image.withUnsafeBytes { hasher.update($0) }
        }
        let labels = set.isSame.map { $0 ? UInt8(1) : 0 }
        labels.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Returns the SHA-256 of a file, read in 1 MiB chunks.
    static func fileDigest(_ url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw CommandFailure("cannot read '\(url.path)' to compute its SHA-256")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func readFile(_ url: URL) throws -> [UInt8] {
        do {
            // readFileBytes rejects FIFOs and devices before opening them, so nothing hangs.
            return try readFileBytes(url)
        } catch {
            throw CommandFailure("cannot read '\(url.path)': \(describeFileError(error))")
        }
    }
}

/// A one-line progress bar on standard error, redrawn in place with a carriage return. It
/// draws nothing when disabled, which the caller does when standard error is not a terminal.
final class ProgressBar {
    private let label: String
    private let enabled: Bool
    private let console: Console
    private var drawn = false

    init(label: String, enabled: Bool, console: Console) {
        self.label = label
        self.enabled = enabled
        self.console = console
    }

    func update(_ completed: Int, of total: Int) {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = completed * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        console.writeError("\r\(label) [\(bar)] \(completed)/\(total) images")
        drawn = true
    }

    func finish() {
        if drawn {
            console.writeError("\n")
        }
    }
}
