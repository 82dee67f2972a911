// `auraface embed --output OUT`: many photos or crops, from a folder, a list or the arguments,
// aligned with a landmarks file, embedded in batches into a resumable output file.

import AuraFace
import Foundation

enum BatchEmbedding {
    /// File extensions read from an --images folder, compared without case.
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "ppm", "pgm"]

    static let options: [OptionSpec] = [
        .value("landmarks-file", "FILE", "Landmarks for many photos: a JSON object {\"a.jpg\": [[x,y] x5]}, JSON lines or a JSON array of {\"image\": PATH, \"landmarks\": [...]}, or text lines 'PATH x1 y1 ... x5 y5' (whitespace or commas). Relative paths are resolved against FILE's folder."),
        .value("images", "DIR", "Embed the image files in DIR and its subfolders (.png, .jpg, .jpeg, .ppm, .pgm), sorted by path."),
        .value("list", "FILE", "Embed the images listed in FILE, one path per line, relative to FILE's folder; '#' starts a comment line."),
        .value("format", "jsonl|csv|npy", "The format of --output (default: from its extension, .jsonl, .csv or .npy)."),
    ]

    static let discussion = """
        With --output OUT and no --tensor: the images from --images DIR, --list FILE or the \
        IMAGE arguments (or, when none is given, every image in --landmarks-file) are embedded \
        in batches of --batch-size into OUT. A photo with landmarks in --landmarks-file is \
        aligned first, and saved as DIR/NAME_aligned.png with --save-aligned DIR. An image \
        without landmarks must be an aligned crop at the model's input size. JSON lines rows \
        are those of a single image, CSV rows are file,norm,e0,e1,..., and a .npy output is \
        float32 [N, D] with its row order in OUT-without-extension.files.txt. A progress bar \
        is drawn on standard error when it is a terminal.

        The output is resumable: after an interruption, the same command skips the images \
        already in OUT. JSON lines and CSV rows are appended and flushed after each batch, and \
        a partly written last line is removed on restart. For .npy, rows go to \
        OUT.partial.jsonl during the run and OUT is written at the end. Resumed rows equal \
        an uninterrupted run's bit for bit. OUT.model.sha256 (for faces.jsonl: \
        faces.jsonl.model.sha256) records the \
        SHA-256 of the weight file, and a rerun with another weight file is rejected rather \
        than mixing two models' embeddings in OUT. Images that fail (unreadable, no landmarks and not \
        a crop, landmarks rejected by the aligner) are written as {"file", "error"} lines to \
        OUT.errors.jsonl, which each run rewrites, and are retried by the \
        next run. The command then exits with status 1.
        """

    /// Returns true when the command line requests the batch mode.
    static func isRequested(_ arguments: ParsedArguments) -> Bool {
        guard arguments.value("tensor") == nil else { return false }
        return ["landmarks-file", "images", "list", "format", "output"].contains {
            arguments.value($0) != nil
        }
    }

    /// One image to embed.
    struct Job {
        /// The name written to the output: the path as the user or a list wrote it.
        var file: String
        var url: URL
    }

    static func run(
        _ arguments: ParsedArguments, modelURL: URL, threads: Int?, batchSize: Int, verbose: Bool,
        console: Console
    ) throws {
        for option in ["tensor", "landmarks"] where arguments.value(option) != nil {
            throw UsageError("--\(option) cannot be combined with --output OUT for many images")
        }
        if arguments.flag("raw") {
            throw UsageError("--raw applies only with --tensor X.npy")
        }
        guard let outputPath = arguments.value("output") else {
            throw UsageError("embedding many images requires --output OUT.{jsonl,csv,npy}")
        }
        try OutputPath.rejectStandardOutput(outputPath, option: "--output")
        if let saveDirectory = arguments.value("save-aligned") {
            try OutputPath.rejectStandardOutput(saveDirectory, option: "--save-aligned")
        }
        let outputURL = URL(fileURLWithPath: outputPath)
        let format = try outputFormat(arguments, outputURL: outputURL)
        try OutputPath.checkFileDestination(outputURL, option: "--output")
        let sources = ["images", "list"].filter { arguments.value($0) != nil }
        if sources.count + (arguments.positionals.isEmpty ? 0 : 1) > 1 {
            throw UsageError("--images DIR, --list FILE and IMAGE arguments cannot be combined; give one of them")
        }
        let landmarksFile = try arguments.value("landmarks-file").map {
            try LandmarksFile(contentsOf: URL(fileURLWithPath: $0))
        }
        let jobs = try imageJobs(arguments, landmarksFile: landmarksFile)
        guard !jobs.isEmpty else {
            throw CommandFailure("no images to embed: the folder, list or landmarks file is empty")
        }
        if let duplicate = firstDuplicate(jobs.map(\.file)) {
            throw CommandFailure("image '\(duplicate)' is listed twice; each image is embedded once")
        }
        if format == .csv, let job = jobs.first(where: { $0.file.contains(where: \.isNewline) }) {
            // A restart reads the CSV back line by line, so a quoted line break would split a row.
            throw CommandFailure(
                "image path \(JSONText.string(job.file)) contains a line break, which a CSV "
                    + "output cannot resume from; use a .jsonl or .npy output")
        }
        if arguments.value("save-aligned") != nil, let landmarksFile {
            // Crops are saved as NAME_aligned.png, so two photos named alike would overwrite.
            let aligned = jobs.filter { landmarksFile.landmarks(for: $0.url) != nil }
            if let name = firstDuplicate(aligned.map { $0.url.deletingPathExtension().lastPathComponent }) {
                throw CommandFailure(
                    "two photos are named '\(name)', so --save-aligned would write both to "
                        + "'\(name)_aligned.png'; rename one or embed them in separate runs")
            }
        }

        if let saveDirectory = arguments.value("save-aligned") {
            try OutputPath.prepareFolder(URL(fileURLWithPath: saveDirectory), option: "--save-aligned")
        }

        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        // Nothing is written until the stamp matches and the existing output proved to be ours.
        let digest = try checkModelStamp(outputURL: outputURL, format: format, modelURL: modelURL)
        let output = try ResumableOutput(
            url: outputURL, format: format, embeddingSize: model.architecture.embeddingSize)
        try recordModelStamp(digest, outputURL: outputURL)
        let pending = jobs.filter { !output.finishedFiles.contains($0.file) }
        if verbose, output.resumedRowCount > 0 {
            console.note(
                "resuming '\(outputURL.path)': \(jobs.count - pending.count) of \(jobs.count) "
                    + "images are already in it")
        }
        var failures = FailureLog(url: errorsURL(for: outputURL))
        try failures.removeStale()

        let progress = ProgressBar(label: "embed", enabled: console.errorIsTerminal, console: console)
        var first = 0
        while first < pending.count {
            let batch = pending[first..<min(first + batchSize, pending.count)]
            let rows = try embedBatch(
                batch, model: model, landmarksFile: landmarksFile,
                saveDirectory: arguments.value("save-aligned"), failures: &failures)
            try output.append(rows)
            first += batch.count
            progress.update(first, of: pending.count)
        }
        progress.finish()
        try output.finish(order: jobs.map(\.file))

        let embedded = pending.count - failures.count
        guard failures.count == 0 else {
            throw CommandFailure(
                "\(failures.count) of \(pending.count) images failed (listed in "
                    + "'\(failures.url.path)'); \(embedded) were written to '\(outputURL.path)'")
        }
        if verbose {
            console.note("embedded \(embedded) images into '\(outputURL.path)'")
        }
    }

    /// Loads, aligns and embeds one batch. A failing image is logged and left out.
    static func embedBatch(
        _ batch: ArraySlice<Job>, model: AuraFaceModel, landmarksFile: LandmarksFile?,
        saveDirectory: String?, failures: inout FailureLog
    ) throws -> [EmbeddingRow] {
        let inputSize = model.architecture.inputSize
        var loaded: [(job: Job, image: RGBImage, face: AlignedFace?)] = []
        for job in batch {
            do {
                if let landmarks = landmarksFile?.landmarks(for: job.url) {
                    let face = try PhotoAlignment.alignedFace(
                        photoPath: job.url.path, landmarks: landmarks, inputSize: inputSize,
                        saveDirectory: saveDirectory)
                    loaded.append((job, face.image, face))
                    continue
                }
                let image = try PhotoFile.read(contentsOf: job.url)
                guard image.width == inputSize, image.height == inputSize else {
                    let source = landmarksFile.map { "no landmarks in '\($0.path)'" } ?? "no --landmarks-file"
                    throw CommandFailure(
                        "\(source), and the image is \(image.width)x\(image.height), not an aligned "
                            + "\(inputSize)x\(inputSize) crop")
                }
                loaded.append((job, image, nil))
            } catch {
                try failures.record(file: job.file, message: AuraFaceCommandLine.oneLine(error))
            }
        }
        var rows: [EmbeddingRow] = []
        try embedFaces(loaded.map(\.image), model: model, batchSize: max(loaded.count, 1)) {
            first, embeddings in
            for (offset, raw) in embeddings.enumerated() {
                let entry = loaded[first + offset]
                rows.append(
                    EmbeddingRow(
                        file: entry.job.file, embedding: try AuraFaceModel.l2Normalized(raw),
                        norm: l2Norm(raw), face: entry.face))
            }
        }
        return rows
    }

    static func outputFormat(
        _ arguments: ParsedArguments, outputURL: URL
    ) throws(UsageError) -> EmbeddingOutputFormat {
        let names = EmbeddingOutputFormat.allCases.map(\.rawValue).joined(separator: ", ")
        if let text = arguments.value("format") {
            guard let format = EmbeddingOutputFormat(rawValue: text) else {
                throw UsageError("invalid value '\(text)' for --format, expected one of \(names)")
            }
            return format
        }
        guard let format = EmbeddingOutputFormat(pathExtension: outputURL.pathExtension) else {
            throw UsageError(
                "cannot tell the format of --output '\(outputURL.lastPathComponent)' from its "
                    + "extension; use .jsonl, .csv or .npy, or give --format \(names.replacingOccurrences(of: ", ", with: "|"))")
        }
        return format
    }

    /// The failure log, named from the whole output file name (`faces.jsonl.errors.jsonl`) so
    /// that outputs sharing a stem, such as faces.jsonl and faces.csv, keep separate logs.
    static func errorsURL(for outputURL: URL) -> URL {
        URL(fileURLWithPath: outputURL.path + ".errors.jsonl")
    }

    /// The weight file digest of an output, named from the whole output file name
    /// (`faces.jsonl.model.sha256`) for the same reason as `errorsURL(for:)`.
    static func modelStampURL(for outputURL: URL) -> URL {
        URL(fileURLWithPath: outputURL.path + ".model.sha256")
    }

    /// Rejects resuming an output whose rows came from another weight file, since skipping
    /// those images would mix two models' embeddings in one output. Writes nothing.
    ///
    /// - Returns: the SHA-256 of the weight file, for `recordModelStamp`.
    /// - Throws: `CommandFailure` naming both digests when they differ.
    static func checkModelStamp(
        outputURL: URL, format: EmbeddingOutputFormat, modelURL: URL
    ) throws -> String {
        let stampURL = modelStampURL(for: outputURL)
        let digest = try EvalCommand.fileDigest(modelURL)
        let fileManager = FileManager.default
        let journalPath = format == .npy ? outputURL.path + ".partial.jsonl" : outputURL.path
        let hasRows = fileManager.fileExists(atPath: journalPath) || fileManager.fileExists(atPath: outputURL.path)
        // NOTE: an output written before the stamp existed has none, so its rows are adopted.
        if hasRows, let stamp = try? readFileBytes(stampURL), let recorded = String(bytes: stamp, encoding: .utf8) {
            let recordedDigest = recorded.trimmingCharacters(in: .whitespacesAndNewlines)
            guard recordedDigest == digest else {
                throw CommandFailure(
                    "'\(outputURL.path)' contains embeddings from a weight file with SHA-256 "
                        + "\(recordedDigest) (recorded in '\(stampURL.path)'), but '\(modelURL.path)' "
                        + "has SHA-256 \(digest); remove the output or choose another --output")
            }
        }
        return digest
    }

    /// Records the weight file's SHA-256 next to the output, once the output is open.
    static func recordModelStamp(_ digest: String, outputURL: URL) throws {
        let stampURL = modelStampURL(for: outputURL)
        do {
            try writeFileAtomically(Array((digest + "\n").utf8), to: stampURL)
        } catch {
            throw CommandFailure("cannot write '\(stampURL.path)': \(describeFileError(error))")
        }
    }

    /// Lists the images to embed, in a stable order, with the names the output uses.
    static func imageJobs(_ arguments: ParsedArguments, landmarksFile: LandmarksFile?) throws -> [Job] {
        if let directory = arguments.value("images") {
            return try folderJobs(directory)
        }
        if let listPath = arguments.value("list") {
            let listURL = URL(fileURLWithPath: listPath)
            if let kind = OutputPath.nonRegularKind(listURL.path) {
                throw CommandFailure("--list '\(listURL.path)' is \(kind), expected a text file of image paths")
            }
            let text: String
            do {
                text = try String(contentsOf: listURL, encoding: .utf8)
            } catch {
                throw CommandFailure("cannot read image list '\(listURL.path)': \(describeFileError(error))")
            }
            let base = listURL.deletingLastPathComponent()
            return text.split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
                .map { Job(file: $0, url: URL(fileURLWithPath: $0, relativeTo: base).standardizedFileURL) }
        }
        if !arguments.positionals.isEmpty {
            return arguments.positionals.map {
                Job(file: $0, url: URL(fileURLWithPath: $0).standardizedFileURL)
            }
        }
        guard let landmarksFile else {
            throw UsageError(
                "no images given: use --images DIR, --list FILE, IMAGE arguments or --landmarks-file FILE")
        }
        return landmarksFile.entries.map { Job(file: $0.image, url: $0.url) }
    }

    /// Lists the image files under `directory`, skipping hidden files, sorted by path.
    static func folderJobs(_ directory: String) throws -> [Job] {
        let root = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory),
            isDirectory.boolValue
        else {
            throw CommandFailure("--images '\(directory)' is not a folder")
        }
        guard
            let enumerator = FileManager.default.enumerator(
                at: root, includingPropertiesForKeys: [.isRegularFileKey],
                options: [.skipsHiddenFiles])
        else {
            throw CommandFailure("cannot list the folder '\(root.path)'")
        }
        let rootPath = root.standardizedFileURL.path
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        var jobs: [Job] = []
        for case let url as URL in enumerator
        where imageExtensions.contains(url.pathExtension.lowercased()) {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else {
                continue
            }
            let path = url.standardizedFileURL.path
            let relative = path.hasPrefix(rootPath + "/") ? String(path.dropFirst(rootPath.count + 1)) : url.lastPathComponent
            jobs.append(Job(file: prefix + relative, url: url.standardizedFileURL))
        }
        return jobs.sorted { $0.file < $1.file }
    }

    static func firstDuplicate(_ names: [String]) -> String? {
        var seen: Set<String> = []
        return names.first { !seen.insert($0).inserted }
    }
}

/// The per-image failures of one run, as JSON lines `{"file": ..., "error": ...}`.
struct FailureLog {
    let url: URL
    private(set) var count = 0
    private var handle: FileHandle?

    init(url: URL) {
        self.url = url
    }

    /// Removes the log of an earlier run: its images are retried in this one.
    func removeStale() throws {
        if FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.removeItem(at: url)
        }
    }

    mutating func record(file: String, message: String) throws {
        if handle == nil {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw CommandFailure("cannot create error log '\(url.path)'")
            }
            do {
                handle = try FileHandle(forWritingTo: url)
            } catch {
                throw CommandFailure("cannot open error log '\(url.path)': \(describeFileError(error))")
            }
        }
        let line = "{\"file\":\(JSONText.string(file)),\"error\":\(JSONText.string(message))}\n"
        try handle?.write(contentsOf: Data(line.utf8))
        count += 1
    }
}
