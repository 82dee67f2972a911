// Resumable embedding output for `auraface embed --output`: JSON lines and CSV appended one
// batch at a time, and .npy written at the end from a JSON-lines journal.

import AuraFace
import Foundation

/// The file formats of `embed --output`.
enum EmbeddingOutputFormat: String, CaseIterable {
    case jsonl
    case csv
    case npy

    /// Picks the format from the output's extension (`.jsonl` or `.ndjson`, `.csv`, `.npy`).
    init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "jsonl", "ndjson": self = .jsonl
        case "csv": self = .csv
        case "npy": self = .npy
        default: return nil
        }
    }
}

/// One embedded image.
struct EmbeddingRow {
    /// The image path as the command names it: the key that a restart matches on.
    var file: String
    /// The L2-normalized embedding.
    var embedding: [Float]
    /// The L2 norm of the raw network output.
    var norm: Double
    /// The alignment, for a photo aligned with landmarks; nil for an aligned crop.
    var face: AlignedFace?

    /// Formats the row as one JSON object, the layout of `embed` with images.
    var jsonLine: String {
        var line = "{\"file\":\(JSONText.string(file)),\"embedding\":\(JSONText.array(embedding)),"
            + "\"norm\":\(JSONText.number(norm))"
        if let face {
            line += "," + PhotoAlignment.jsonFields(face)
        }
        return line + "}"
    }

    /// Formats the row as CSV: the file, the norm, then one column per embedding value.
    var csvLine: String {
        ([CSVText.field(file), JSONText.number(norm)] + embedding.map { JSONText.number($0) })
            .joined(separator: ",")
    }
}

enum CSVText {
    /// Quotes a field when it contains a comma, a quote or a line break, doubling its quotes.
    static func field(_ text: String) -> String {
        guard text.contains(where: { ",\"\n\r".contains($0) }) else {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Splits the first field, unquoted as `field(_:)` quoted it, from the rest of a CSV line.
    /// Returns nil when the quoting is broken.
    static func splitFirstField(_ line: Substring) -> (field: String, rest: Substring)? {
        guard line.first == "\"" else {
            guard let comma = line.firstIndex(of: ",") else {
                return (String(line), "")
            }
            return (String(line[..<comma]), line[line.index(after: comma)...])
        }
        var field = ""
        var index = line.index(after: line.startIndex)
        while index < line.endIndex {
            let character = line[index]
            index = line.index(after: index)
            if character == "\"" {
                if index < line.endIndex, line[index] == "\"" {
                    field.append("\"")
                    index = line.index(after: index)
                    continue
                }
                if index == line.endIndex {
                    return (field, "")
                }
                guard line[index] == "," else { return nil }
                return (field, line[line.index(after: index)...])
            }
            field.append(character)
        }
        return nil
    }
}

/// An output file that survives interruption. JSON lines and CSV are appended and flushed to
/// disk after each batch. A `.npy` file cannot be appended in place, so rows go to a journal,
/// `OUT.npy.partial.jsonl`, and the matrix and `OUT.files.txt` are written at the end, each
/// atomically, before the journal is removed.
///
/// Opening an existing output reads the rows it contains so they are not computed again. A last
/// line without a line break, left by a run that was killed mid-write, is cut off first.
/// A resumed run's rows equal an uninterrupted run's bit for bit, because the engine gives an
/// image the same result whatever batch it arrives in.
final class ResumableOutput {
    let url: URL
    let format: EmbeddingOutputFormat
    let embeddingSize: Int
    /// The files already in the output, including those loaded when it was opened.
    private(set) var finishedFiles: Set<String> = []
    /// The number of rows found when the output was opened.
    private(set) var resumedRowCount = 0
    /// For .npy: every row in journal order, since the matrix is written at the end.
    private var npyRows: [(file: String, embedding: [Float])] = []
    private var handle: FileHandle?

    /// The file rows are appended to: the output itself, or the journal for .npy.
    var appendURL: URL {
        format == .npy ? URL(fileURLWithPath: url.path + ".partial.jsonl") : url
    }

    /// The row order of a .npy output: one file per line.
    var filesListURL: URL {
        url.deletingPathExtension().appendingPathExtension("files.txt")
    }

    private var csvHeader: String {
        (["file", "norm"] + (0..<embeddingSize).map { "e\($0)" }).joined(separator: ",")
    }

    init(url: URL, format: EmbeddingOutputFormat, embeddingSize: Int) throws {
        self.url = url
        self.format = format
        self.embeddingSize = embeddingSize
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: appendURL.path) {
            try loadExistingRows()
        } else if format == .npy, fileManager.fileExists(atPath: url.path) {
            try loadFinishedMatrix()
        }
        if !fileManager.fileExists(atPath: appendURL.path) {
            var start = ""
            if format == .csv {
                start = csvHeader + "\n"
            } else if format == .npy {
                // Carries the rows of a finished .npy into the journal, so adding images to a
                // finished run keeps the old rows.
                start = npyRows.map { journalLine(file: $0.file, embedding: $0.embedding) + "\n" }
                    .joined()
            }
            guard fileManager.createFile(atPath: appendURL.path, contents: Data(start.utf8)) else {
                throw CommandFailure("cannot create output file '\(appendURL.path)'")
            }
        }
        do {
            handle = try FileHandle(forWritingTo: appendURL)
            try handle?.seekToEnd()
        } catch {
            throw CommandFailure("cannot open output file '\(appendURL.path)': \(describeFileError(error))")
        }
    }

    /// Appends one batch of rows and flushes it to disk.
    func append(_ rows: [EmbeddingRow]) throws {
        guard let handle, !rows.isEmpty else { return }
        var text = ""
        for row in rows {
            switch format {
            case .jsonl: text += row.jsonLine + "\n"
            case .csv: text += row.csvLine + "\n"
            case .npy:
                text += journalLine(file: row.file, embedding: row.embedding) + "\n"
                npyRows.append((row.file, row.embedding))
            }
            finishedFiles.insert(row.file)
        }
        try handle.write(contentsOf: Data(text.utf8))
        try handle.synchronize()
    }

    /// Closes the output. For .npy, writes the matrix with rows in `order` (rows for files not
    /// in `order` follow in journal order) and its file list, then removes the journal.
    func finish(order: [String]) throws {
        try handle?.close()
        handle = nil
        guard format == .npy else { return }
        var rowIndex: [String: Int] = [:]
        for (index, row) in npyRows.enumerated() where rowIndex[row.file] == nil {
            rowIndex[row.file] = index
        }
        var indices = order.compactMap { rowIndex.removeValue(forKey: $0) }
        indices += rowIndex.values.sorted()
        guard !indices.isEmpty else {
            throw CommandFailure("no image was embedded, so '\(url.path)' was not written")
        }
        let values = indices.flatMap { npyRows[$0].embedding }
        try NpyArray(shape: [indices.count, embeddingSize], values: values).write(to: url)
        let list = indices.map { npyRows[$0].file + "\n" }.joined()
        try writeFileAtomically(Array(list.utf8), to: filesListURL)
        try FileManager.default.removeItem(at: appendURL)
    }

    private func journalLine(file: String, embedding: [Float]) -> String {
        "{\"file\":\(JSONText.string(file)),\"embedding\":\(JSONText.array(embedding))}"
    }

    /// Reads the rows of an existing output or journal. The whole file is validated as one this
    /// command wrote before anything in it changes: only then is a partial last line, left by a
    /// run killed mid-write, cut off.
    private func loadExistingRows() throws {
        let path = appendURL.path
        let data: Data
        do {
            data = Data(try readFileBytes(appendURL))
        } catch {
            throw CommandFailure("cannot read existing output '\(path)': \(describeFileError(error))")
        }
        let keep = data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        guard let text = String(data: data.prefix(keep), encoding: .utf8),
            Self.isUTF8AllowingCutSequence(data.suffix(from: keep))
        else {
            throw CommandFailure(
                "existing output '\(path)' is not UTF-8 text, so it is not an output of "
                    + "'auraface embed'; remove it or choose another --output")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        if format == .csv {
            if data.isEmpty {
                // An empty file has no row to keep; the header is written when it is opened.
                try Data(csvHeader.utf8 + [UInt8(ascii: "\n")]).write(to: appendURL)
                return
            }
            let header = lines.first ?? Substring(String(decoding: data.prefix(40), as: UTF8.self))
            guard header == csvHeader else {
                throw CommandFailure(
                    "existing output '\(path)' starts with '\(header.prefix(40))', expected the "
                        + "header 'file,norm,e0,...,e\(embeddingSize - 1)' of \(embeddingSize)-d "
                        + "embeddings; remove it or choose another --output")
            }
            lines = lines.dropFirst()
        } else if keep < data.count {
            let partial = String(decoding: data.suffix(from: keep).prefix(8), as: UTF8.self)
            let rowStart = "{\"file\":"
            guard rowStart.hasPrefix(partial) || partial.hasPrefix(rowStart) else {
                throw CommandFailure(
                    "existing output '\(path)' ends with a line that does not start like a row "
                        + "of 'auraface embed' ('\(partial)', expected '\(rowStart)...'); remove "
                        + "it or choose another --output")
            }
        }
        let firstLineNumber = format == .csv ? 2 : 1
        var rows: [(file: String, embedding: [Float])] = []
        for (offset, line) in lines.enumerated() {
            let row = format == .csv ? parseCSVRow(line) : parseJSONRow(line)
            guard let row else {
                throw CommandFailure(
                    "existing output '\(path)' line \(offset + firstLineNumber) is not a row of "
                        + "\(embeddingSize)-d embeddings written by 'auraface embed'; remove it or "
                        + "choose another --output")
            }
            rows.append(row)
        }

        if keep < data.count {
            let handle = try FileHandle(forWritingTo: appendURL)
            try handle.truncate(atOffset: UInt64(keep))
            try handle.close()
        }
        for row in rows {
            if format == .npy {
                npyRows.append(row)
            }
            finishedFiles.insert(row.file)
        }
        resumedRowCount = rows.count
    }

    /// Returns true when `bytes` are UTF-8, except perhaps for a multi-byte character cut
    /// off at the end by an interrupted write.
    static func isUTF8AllowingCutSequence(_ bytes: Data) -> Bool {
        for cut in 0...min(3, bytes.count) {
            if String(data: bytes.dropLast(cut), encoding: .utf8) != nil {
                return true
            }
        }
        return false
    }

    /// Reads a finished .npy output with its file list, when the journal is gone.
    private func loadFinishedMatrix() throws {
        let matrix = try NpyArray(contentsOf: url)
        let listText = (try? readFileBytes(filesListURL)).flatMap { String(bytes: $0, encoding: .utf8) } ?? ""
        let files = listText.split(separator: "\n").map(String.init)
        guard matrix.shape == [files.count, embeddingSize] else {
            throw CommandFailure(
                "'\(url.path)' has shape \(matrix.shape), expected [\(files.count), \(embeddingSize)] "
                    + "to match the \(files.count) files in '\(filesListURL.path)'; remove both "
                    + "or choose another --output")
        }
        for (index, file) in files.enumerated() {
            let embedding = Array(matrix.values[(index * embeddingSize)..<((index + 1) * embeddingSize)])
            npyRows.append((file, embedding))
            finishedFiles.insert(file)
        }
        resumedRowCount = files.count
    }

    /// Reads the file and embedding of a JSON line. The embedding is parsed with Float(_:) from
    /// its text, so a value reads back as the same Float that was written.
    private func parseJSONRow(_ line: Substring) -> (file: String, embedding: [Float])? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let file = object["file"] as? String,
            let start = line.range(of: "\"embedding\":[")?.upperBound,
            let end = line[start...].firstIndex(of: "]")
        else {
            return nil
        }
        let values = line[start..<end].split(separator: ",").compactMap { Float($0) }
        guard values.count == embeddingSize else { return nil }
        return (file, values)
    }

    private func parseCSVRow(_ line: Substring) -> (file: String, embedding: [Float])? {
        guard let (file, rest) = CSVText.splitFirstField(line) else { return nil }
        let fields = rest.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == embeddingSize + 1, Double(fields[0]) != nil else { return nil }
        let values = fields.dropFirst().compactMap { Float($0) }
        guard values.count == embeddingSize else { return nil }
        return (file, values)
    }
}
