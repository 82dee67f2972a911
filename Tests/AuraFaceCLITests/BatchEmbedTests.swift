// `auraface embed --output`: a folder of photos and crops embedded to JSON lines, CSV and .npy,
// interrupted runs resumed, per-image failures, and the progress bar.

import AuraFace
import Foundation
import Testing

@testable import AuraFaceCLI

/// A folder of 6 photos with landmarks and 4 aligned crops without, and a converted model.
struct BatchFixture {
    var directory: URL
    var model: String
    var imagesDirectory: String
    var landmarksFile: String
    var photoPaths: [String]
    var cropPaths: [String]
    /// The landmarks of each photo, in `photoPaths` order.
    var landmarks: [[Double]]

    static let photoCount = 6
    static let cropCount = 4

    init() throws {
        directory = try makeTemporaryDirectory()
        model = try convertParityModel(into: directory)
        let images = directory.appendingPathComponent("images")
        let photos = images.appendingPathComponent("photos")
        let crops = images.appendingPathComponent("crops")
        for folder in [photos, crops] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        imagesDirectory = images.path
        cropPaths = try writeFaceCrops(count: Self.cropCount, size: 112, into: crops, seed: 7)

        var random = UInt64(11)
        func nextByte() -> UInt8 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: random >> 56)
        }
        photoPaths = []
        landmarks = []
        var lines: [String] = []
        for index in 0..<Self.photoCount {
            let (width, height) = (150 + 4 * index, 140)
            let photo = try RGBImage(
                width: width, height: height, pixels: (0..<(width * height * 3)).map { _ in nextByte() })
            let url = photos.appendingPathComponent("photo\(index).png")
            try PNGImage.write(photo, to: url)
            photoPaths.append(url.path)

            // The template moved and scaled: a similarity transform fits it exactly.
            let scale = 1.0 + 0.05 * Double(index)
            let points = ArcFaceTemplate.points112.flatMap {
                [$0.x * scale + 10 + Double(index), $0.y * scale + 8]
            }
            landmarks.append(points)
            let numbers = points.map { "\($0)" }.joined(separator: " ")
            lines.append("images/photos/photo\(index).png \(numbers)")
        }
        let landmarksURL = directory.appendingPathComponent("landmarks.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: landmarksURL, atomically: true, encoding: .utf8)
        landmarksFile = landmarksURL.path
    }

    var imageCount: Int { Self.photoCount + Self.cropCount }

    func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    /// Builds the command line that embeds the whole folder into `output`.
    func folderArguments(output: String, extra: [String] = []) -> [String] {
        ["embed", "--model", model, "--landmarks-file", landmarksFile, "--images", imagesDirectory,
         "--output", output, "--batch-size", "3"] + extra
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// One JSON line of the output, decoded.
struct OutputRow {
    var file: String
    var embedding: [Float]
    var hasMatrix: Bool
}

func readJSONLines(_ path: String) throws -> [OutputRow] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let values = try #require(object["embedding"] as? [NSNumber])
        return OutputRow(
            file: try #require(object["file"] as? String), embedding: values.map(\.floatValue),
            hasMatrix: object["matrix"] != nil)
    }
}

func readCSVRows(_ path: String) throws -> (header: String, rows: [OutputRow]) {
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    let rows = try lines.dropFirst().map { line in
        let fields = line.split(separator: ",")
        return OutputRow(
            file: String(fields[0]), embedding: try fields.dropFirst(2).map { try #require(Float($0)) },
            hasMatrix: false)
    }
    return (String(lines.first ?? ""), rows)
}

/// Cuts a finished output back to its first `keptRows` rows plus half of the next row, the
/// state a run killed while writing leaves. `headerLines` lines before the rows are kept too.
func simulateInterruption(of path: String, into target: String, keptRows: Int, headerLines: Int = 0) throws {
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    let kept = lines.prefix(headerLines + keptRows).map { $0 + "\n" }.joined()
    let partial = lines[headerLines + keptRows].prefix(lines[headerLines + keptRows].count / 2)
    try (kept + partial).write(toFile: target, atomically: true, encoding: .utf8)
}

@Suite("Batch embedding")
struct BatchEmbedTests {
    @Test func folderEmbedsToJSONLines() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let output = fixture.path("out.jsonl")

        let result = runCommandLine(fixture.folderArguments(output: output))

        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.isEmpty)
        // Standard error is not a terminal here, so no progress bar is drawn.
        #expect(result.error.isEmpty)
        let rows = try readJSONLines(output)
        #expect(rows.map(\.file) == (fixture.cropPaths + fixture.photoPaths).sorted())
        #expect(rows.filter(\.hasMatrix).map(\.file) == fixture.photoPaths)
        for row in rows {
            let norm = row.embedding.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-5, "\(row.file)")
        }

        // The batch rows match the single-image commands.
        let landmarks = fixture.landmarks[2].map { "\($0)" }.joined(separator: ",")
        let single = runCommandLine([
            "embed", "--model", fixture.model, "--landmarks", landmarks, fixture.photoPaths[2],
        ])
        try #require(single.status == 0, "\(single.error)")
        let singleRow = try #require(try readJSONLinesText(single.output).first)
        let batchRow = try #require(rows.first { $0.file == fixture.photoPaths[2] })
        #expect(maxAbsoluteDifference(batchRow.embedding, singleRow.embedding) < 1e-5)

        let crop = runCommandLine(["embed", "--model", fixture.model, fixture.cropPaths[1]])
        try #require(crop.status == 0, "\(crop.error)")
        let cropRow = try #require(try readJSONLinesText(crop.output).first)
        let batchCrop = try #require(rows.first { $0.file == fixture.cropPaths[1] })
        #expect(maxAbsoluteDifference(batchCrop.embedding, cropRow.embedding) < 1e-5)
    }

    @Test func formatsHoldSameValues() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        for name in ["out.jsonl", "out.csv", "out.npy"] {
            let result = runCommandLine(fixture.folderArguments(output: fixture.path(name)))
            try #require(result.status == 0, "\(name): \(result.error)")
        }

        let rows = try readJSONLines(fixture.path("out.jsonl"))
        let csv = try readCSVRows(fixture.path("out.csv"))
        let npy = try NpyArray(contentsOf: URL(fileURLWithPath: fixture.path("out.npy")))
        let files = try String(contentsOfFile: fixture.path("out.files.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let size = rows[0].embedding.count

        #expect(csv.header == (["file", "norm"] + (0..<size).map { "e\($0)" }).joined(separator: ","))
        #expect(csv.rows.map(\.file) == rows.map(\.file))
        #expect(csv.rows.map(\.embedding) == rows.map(\.embedding))
        #expect(npy.shape == [fixture.imageCount, size])
        #expect(files == rows.map(\.file))
        #expect(npy.values == rows.flatMap(\.embedding))
        #expect(!FileManager.default.fileExists(atPath: fixture.path("out.npy.partial.jsonl")))
    }

    @Test("interrupted run resumes to the same output", arguments: [("jsonl", 0), ("csv", 1)])
    func interruptedRunResumes(_ format: String, headerLines: Int) throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let reference = fixture.path("reference.\(format)")
        let resumed = fixture.path("resumed.\(format)")
        try #require(runCommandLine(fixture.folderArguments(output: reference)).status == 0)
        try simulateInterruption(of: reference, into: resumed, keptRows: 4, headerLines: headerLines)

        let result = runCommandLine(fixture.folderArguments(output: resumed, extra: ["--verbose"]))

        #expect(result.status == 0, "\(result.error)")
        #expect(result.error.contains("4 of \(fixture.imageCount) images are already in it"))
        let expectedLines = try String(contentsOfFile: reference, encoding: .utf8).split(separator: "\n")
        let resumedLines = try String(contentsOfFile: resumed, encoding: .utf8).split(separator: "\n")
        #expect(resumedLines.count == expectedLines.count)
        #expect(resumedLines.prefix(headerLines + 4) == expectedLines.prefix(headerLines + 4))
        let expectedRows = format == "csv" ? try readCSVRows(reference).rows : try readJSONLines(reference)
        let resumedRows = format == "csv" ? try readCSVRows(resumed).rows : try readJSONLines(resumed)
        expectSameRows(resumedRows, expectedRows)
    }

    @Test func resumeKeepsFinishedRows() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let output = fixture.path("out.jsonl")
        try #require(runCommandLine(fixture.folderArguments(output: output)).status == 0)
        // Marks the first row: a rerun that recomputed it would restore the original value.
        var lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[0] = lines[0].replacingOccurrences(of: "\"embedding\":[", with: "\"embedding\":[0.5,")
        lines[0] = lines[0].replacingOccurrences(of: #",[^,\]]*\]"#, with: "]", options: .regularExpression)
        let marked = lines.prefix(3).map { $0 + "\n" }.joined()
        try marked.write(toFile: output, atomically: true, encoding: .utf8)

        let result = runCommandLine(fixture.folderArguments(output: output))

        #expect(result.status == 0, "\(result.error)")
        let rows = try readJSONLines(output)
        #expect(rows.count == fixture.imageCount)
        #expect(rows.first?.embedding.first == 0.5)
        #expect(Set(rows.map(\.file)).count == fixture.imageCount)
    }

    @Test("resume with other weights rejected", arguments: ["jsonl", "npy"])
    func resumeWithOtherWeightsRejected(_ format: String) throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let output = fixture.path("out.\(format)")
        let partial = format == "npy" ? output + ".partial.jsonl" : output
        try #require(runCommandLine(fixture.folderArguments(output: output)).status == 0)
        if format == "npy" {
            // A killed .npy run leaves only its journal.
            try FileManager.default.moveItem(atPath: output, toPath: fixture.path("finished.npy"))
            try "".write(toFile: partial, atomically: true, encoding: .utf8)
        }
        let before = try String(contentsOfFile: partial, encoding: .utf8)
        let otherModel = try convertParityModel("r100", into: fixture.directory)
        var arguments = fixture.folderArguments(output: output)
        arguments[2] = otherModel

        let result = runCommandLine(arguments)

        #expect(result.status == 1)
        #expect(result.error.contains("contains embeddings from a weight file with SHA-256"), "\(result.error)")
        #expect(result.error.contains(otherModel), "\(result.error)")
        #expect(try String(contentsOfFile: partial, encoding: .utf8) == before)
        // The weights it was written with still resume it.
        #expect(runCommandLine(fixture.folderArguments(output: output)).status == 0)
    }

    @Test func interruptedNpyResumesFromJournal() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        try #require(runCommandLine(fixture.folderArguments(output: fixture.path("reference.jsonl"))).status == 0)
        try #require(runCommandLine(fixture.folderArguments(output: fixture.path("reference.npy"))).status == 0)
        // A journal line is a JSON line without its "norm" and alignment fields.
        let journal = fixture.path("resumed.npy.partial.jsonl")
        let rows = try String(contentsOfFile: fixture.path("reference.jsonl"), encoding: .utf8)
            .split(separator: "\n")
            .map { String($0[..<$0.range(of: ",\"norm\":")!.lowerBound]) + "}" }
        try (rows.prefix(5).map { $0 + "\n" }.joined() + rows[5].prefix(30))
            .write(toFile: journal, atomically: true, encoding: .utf8)

        let result = runCommandLine(fixture.folderArguments(output: fixture.path("resumed.npy")))

        #expect(result.status == 0, "\(result.error)")
        try expectSameMatrix(fixture.path("resumed.npy"), fixture.path("reference.npy"))
        #expect(try String(contentsOfFile: fixture.path("resumed.files.txt"), encoding: .utf8)
            == String(contentsOfFile: fixture.path("reference.files.txt"), encoding: .utf8))
        #expect(!FileManager.default.fileExists(atPath: journal))
    }

    @Test func finishedNpyExtendsWithNewImages() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        try #require(runCommandLine(fixture.folderArguments(output: fixture.path("reference.npy"))).status == 0)
        let files = try String(contentsOfFile: fixture.path("reference.files.txt"), encoding: .utf8)
            .split(separator: "\n")
        let list = fixture.path("first.txt")
        try (files.prefix(5).joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let partial = runCommandLine([
            "embed", "--model", fixture.model, "--landmarks-file", fixture.landmarksFile,
            "--list", list, "--output", fixture.path("grown.npy"),
        ])
        try #require(partial.status == 0, "\(partial.error)")
        let firstPart = try NpyArray(contentsOf: URL(fileURLWithPath: fixture.path("grown.npy")))
        #expect(firstPart.shape.first == 5)

        let result = runCommandLine(fixture.folderArguments(output: fixture.path("grown.npy")))

        #expect(result.status == 0, "\(result.error)")
        try expectSameMatrix(fixture.path("grown.npy"), fixture.path("reference.npy"))
        #expect(try String(contentsOfFile: fixture.path("grown.files.txt"), encoding: .utf8)
            == String(contentsOfFile: fixture.path("reference.files.txt"), encoding: .utf8))
    }

    @Test func failedImageIsLoggedAndRetried() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let bad = URL(fileURLWithPath: fixture.imagesDirectory).appendingPathComponent("crops/small.png")
        try PNGImage.write(try RGBImage(width: 50, height: 40, pixels: [UInt8](repeating: 9, count: 50 * 40 * 3)), to: bad)
        let output = fixture.path("out.jsonl")
        let errors = fixture.path("out.jsonl.errors.jsonl")

        let failed = runCommandLine(fixture.folderArguments(output: output))

        #expect(failed.status == 1)
        #expect(failed.errorLines.count == 1)
        #expect(failed.error.hasPrefix("auraface: error: 1 of 11 images failed"))
        #expect(try readJSONLines(output).count == fixture.imageCount)
        let logged = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n")
        #expect(logged.count == 1)
        #expect(logged.first?.contains(JSONText.string(bad.path)) == true)
        #expect(logged.first?.contains("50x40, not an aligned 112x112 crop") == true)

        try FileManager.default.removeItem(at: bad)
        let retried = runCommandLine(fixture.folderArguments(output: output))

        #expect(retried.status == 0, "\(retried.error)")
        #expect(!FileManager.default.fileExists(atPath: errors))
        #expect(try readJSONLines(output).count == fixture.imageCount)
    }

    @Test func landmarksFileAloneSavesAlignedCrops() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let output = fixture.path("photos.jsonl")
        let aligned = fixture.path("aligned")

        let result = runCommandLine([
            "embed", "--model", fixture.model, "--landmarks-file", fixture.landmarksFile,
            "--output", output, "--save-aligned", aligned,
        ])

        #expect(result.status == 0, "\(result.error)")
        let rows = try readJSONLines(output)
        #expect(rows.map(\.file) == (0..<BatchFixture.photoCount).map { "images/photos/photo\($0).png" })
        // Embedding a saved crop as an aligned image gives the photo's row back.
        let crop = aligned + "/photo3_aligned.png"
        let image = try PNGImage.read(contentsOf: URL(fileURLWithPath: crop))
        #expect(image.width == 112)
        #expect(image.height == 112)
        let cropResult = runCommandLine(["embed", "--model", fixture.model, crop])
        try #require(cropResult.status == 0, "\(cropResult.error)")
        let cropRow = try #require(try readJSONLinesText(cropResult.output).first)
        #expect(maxAbsoluteDifference(cropRow.embedding, rows[3].embedding) < 1e-5)
    }

    @Test func progressBarOnlyOnTerminal() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let streams = CapturedStreams()
        var console = Console(writeOutput: { streams.output += $0 }, writeError: { streams.error += $0 })
        console.errorIsTerminal = true

        let status = AuraFaceCommandLine.run(fixture.folderArguments(output: fixture.path("out.csv")), console: console)

        #expect(status == 0, "\(streams.error)")
        #expect(streams.error.contains("\r"))
        #expect(streams.error.contains("] \(fixture.imageCount)/\(fixture.imageCount) images"))
        #expect(streams.error.hasSuffix("\n"))
        #expect(streams.output.isEmpty)
    }

    @Test("batch usage errors exit 2", arguments: [
        ["--images", "dir", "a.png"],
        ["--images", "dir", "--list", "list.txt"],
        ["--format", "xml", "a.png"],
        ["--landmarks", "1,2,3,4,5,6,7,8,9,10", "a.png"],
    ])
    func batchUsageError(_ extra: [String]) {
        let result = runCommandLine(["embed", "--model", "m.safetensors", "--output", "o.jsonl"] + extra)

        #expect(result.status == 2)
        #expect(result.errorLines.count == 1)
    }

    @Test func unknownOutputExtensionIsUsageError() {
        let result = runCommandLine(["embed", "--model", "m.safetensors", "--output", "o.txt", "a.png"])

        #expect(result.status == 2)
        #expect(result.error.contains("--format jsonl|csv|npy"))
    }

    @Test func corruptExistingOutputIsRejected() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let output = fixture.path("out.jsonl")
        try "not an embedding row\n".write(toFile: output, atomically: true, encoding: .utf8)

        let result = runCommandLine(fixture.folderArguments(output: output))

        #expect(result.status == 1)
        #expect(result.error.contains("line 1 is not a row of"))
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "not an embedding row\n")
    }
}

/// Expects the same files in the same order, with bitwise equal embeddings: the engine gives an
/// image the same bits whatever batch it is embedded in, so a resumed run must too.
func expectSameRows(
    _ actual: [OutputRow], _ expected: [OutputRow], sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.map(\.file) == expected.map(\.file), sourceLocation: sourceLocation)
    for (a, e) in zip(actual, expected) {
        #expect(a.embedding.count == e.embedding.count, "\(a.file)", sourceLocation: sourceLocation)
        #expect(a.embedding == e.embedding, "\(a.file)", sourceLocation: sourceLocation)
    }
}

func expectSameMatrix(_ actualPath: String, _ expectedPath: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let actual = try NpyArray(contentsOf: URL(fileURLWithPath: actualPath))
    let expected = try NpyArray(contentsOf: URL(fileURLWithPath: expectedPath))
    #expect(actual.shape == expected.shape, sourceLocation: sourceLocation)
    #expect(actual.values == expected.values, sourceLocation: sourceLocation)
}

func readJSONLinesText(_ text: String) throws -> [OutputRow] {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("rows-\(UUID().uuidString).jsonl")
    try text.write(to: url, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: url) }
    return try readJSONLines(url.path)
}
