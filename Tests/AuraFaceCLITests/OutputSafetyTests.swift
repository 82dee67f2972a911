// Output paths that must not be damaged or misread. Covers existing files that are not
// embedding outputs, side files of outputs sharing a stem, a layer map or external data named
// as an output, '-', folders and FIFOs in place of files, and a failing standard output.

import AuraFace
import Foundation
import Testing

@testable import AuraFaceCLI

/// Reads the bytes of the file at `path`.
private func contents(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

private func makeFIFO(_ path: String) throws {
    try #require(mkfifo(path, 0o600) == 0, "mkfifo '\(path)' failed: \(String(cString: strerror(errno)))")
}

@Suite struct ExistingOutputTests {
    @Test func foreignFilesAreLeftUnchanged() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let weightCopy = fixture.path("weights.jsonl")
        try FileManager.default.copyItem(atPath: fixture.model, toPath: weightCopy)
        let pngCopy = fixture.path("photo.csv")
        try FileManager.default.copyItem(atPath: fixture.photoPaths[0], toPath: pngCopy)
        let notes = fixture.path("notes.jsonl")
        try Data("first line\nlast line without a break".utf8).write(to: URL(fileURLWithPath: notes))
        let single = fixture.path("single.jsonl")
        try Data("no line break at all".utf8).write(to: URL(fileURLWithPath: single))
        let table = fixture.path("table.csv")
        try Data("a,b,c\n1,2".utf8).write(to: URL(fileURLWithPath: table))

        for path in [weightCopy, pngCopy, notes, single, table] {
            let before = try contents(path)

            let result = runCommandLine(fixture.folderArguments(output: path))

            #expect(result.status == 1, "\(path): \(result.error)")
            #expect(result.error.contains("existing output '\(path)'"), "\(result.error)")
            #expect(try contents(path) == before, "\(path) was changed")
            #expect(!FileManager.default.fileExists(atPath: path + ".model.sha256"))
            #expect(!FileManager.default.fileExists(atPath: path + ".errors.jsonl"))
        }
    }

    @Test func partialLastRowIsStillResumed() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let output = fixture.path("out.jsonl")
        let first = runCommandLine(fixture.folderArguments(output: output))
        try #require(first.status == 0, "\(first.error)")
        let complete = try contents(output)
        // A run killed in the middle of a row, also in the middle of a UTF-8 sequence.
        try (complete + Data("{\"file\":\"images/caf\u{E9}".utf8).dropLast()).write(to: URL(fileURLWithPath: output))

        let resumed = runCommandLine(fixture.folderArguments(output: output))

        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(try contents(output) == complete)
    }

    @Test func sidecarsAreNamedPerOutput() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        // The same graph under another file name converts to other bytes: source_file differs.
        let otherONNX = fixture.path("other.onnx")
        try FileManager.default.copyItem(atPath: AuraFaceCLITests.fixture("parity/r18.onnx"), toPath: otherONNX)
        let otherModel = fixture.path("other.safetensors")
        let converted = runCommandLine(["convert", otherONNX, otherModel])
        try #require(converted.status == 0, "\(converted.error)")
        try #require(try contents(otherModel) != contents(fixture.model))
        let jsonl = fixture.path("faces.jsonl")
        let csv = fixture.path("faces.csv")

        let firstRun = runCommandLine(fixture.folderArguments(output: jsonl))
        try #require(firstRun.status == 0, "\(firstRun.error)")
        var csvArguments = fixture.folderArguments(output: csv)
        csvArguments[2] = otherModel
        let csvRun = runCommandLine(csvArguments)
        try #require(csvRun.status == 0, "\(csvRun.error)")
        var mixedArguments = fixture.folderArguments(output: jsonl)
        mixedArguments[2] = otherModel
        let mixed = runCommandLine(mixedArguments)

        #expect(FileManager.default.fileExists(atPath: jsonl + ".model.sha256"))
        #expect(FileManager.default.fileExists(atPath: csv + ".model.sha256"))
        #expect(!FileManager.default.fileExists(atPath: fixture.path("faces.model.sha256")))
        #expect(mixed.status == 1)
        #expect(mixed.error.contains("contains embeddings from a weight file with SHA-256"), "\(mixed.error)")
    }
}

@Suite struct ConvertOutputTests {
    @Test func layerMapMayNotBeInputOrOutput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("r18.onnx").path
        try FileManager.default.copyItem(atPath: fixture("parity/r18.onnx"), toPath: input)
        let output = directory.appendingPathComponent("r18.safetensors").path
        try Data("old weights".utf8).write(to: URL(fileURLWithPath: output))
        let inputLink = directory.appendingPathComponent("input-link.json").path
        try FileManager.default.createSymbolicLink(atPath: inputLink, withDestinationPath: input)
        let outputHardLink = directory.appendingPathComponent("output-link.json").path
        try FileManager.default.linkItem(atPath: output, toPath: outputHardLink)
        let inputBytes = try contents(input)

        for layerMap in [input, output, inputLink, outputHardLink] {
            let result = runCommandLine(["convert", "--layer-map", layerMap, input, output])

            #expect(result.status == 2, "\(layerMap): \(result.error)")
            #expect(result.error.contains("is the same file as"), "\(result.error)")
        }
        #expect(try contents(input) == inputBytes)
        #expect(try contents(output) == Data("old weights".utf8))
    }

    @Test func badLayerMapPathLeavesNoOutput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("r18.safetensors").path
        let folder = directory.appendingPathComponent("a-folder").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let cases = [
            (directory.appendingPathComponent("missing/map.json").path, "does not exist"),
            (folder, "is a folder"),
        ]

        for (layerMap, message) in cases {
            let result = runCommandLine(["convert", "--layer-map", layerMap, fixture("parity/r18.onnx"), output])

            #expect(result.status == 1, "\(layerMap): \(result.error)")
            #expect(result.error.contains(message), "\(result.error)")
            #expect(!FileManager.default.fileExists(atPath: output))
        }
    }

    @Test func externalDataFileIsNotOverwritten() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("r18-external-data.onnx").path
        let data = input + ".data"
        try FileManager.default.copyItem(atPath: fixture("converter/r18-external-data.onnx"), toPath: input)
        try FileManager.default.copyItem(atPath: fixture("converter/r18-external-data.onnx.data"), toPath: data)
        let dataLink = directory.appendingPathComponent("data-link.safetensors").path
        try FileManager.default.linkItem(atPath: data, toPath: dataLink)
        let dataBytes = try contents(data)

        for output in [data, dataLink] {
            let result = runCommandLine(["convert", input, output])

            #expect(result.status == 2, "\(output): \(result.error)")
            #expect(result.error.contains("is the external data file"), "\(result.error)")
        }
        let mapResult = runCommandLine(
            ["convert", "--layer-map", data, input, directory.appendingPathComponent("out.safetensors").path])
        #expect(mapResult.status == 2, "\(mapResult.error)")
        #expect(try contents(data) == dataBytes)
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out.safetensors").path))
    }
}

@Suite struct OutputPathTests {
    @Test func dashIsRejectedAsOutput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("m.safetensors").path
        let commands = [
            ["convert", fixture("parity/r18.onnx"), "-"],
            ["convert", "--layer-map", "-", fixture("parity/r18.onnx"), directory.appendingPathComponent("o.safetensors").path],
            ["embed", "--model", model, "--images", directory.path, "--output", "-", "--format", "jsonl"],
            ["embed", "--model", model, "--tensor", "x.npy", "--output", "-"],
            ["embed", "--model", model, "--landmarks-file", "l.txt", "--output", directory.appendingPathComponent("o.jsonl").path, "--save-aligned", "-"],
            ["embed", "--model", model, "--landmarks", "1,2,3,4,5,6,7,8,9,10", "--save-aligned", "-", "photo.png"],
        ]

        for arguments in commands {
            let result = runCommandLine(arguments)

            #expect(result.status == 2, "\(arguments): \(result.error)")
            #expect(result.error.contains("writing to standard output is not supported"), "\(arguments): \(result.error)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("o.safetensors").path))
    }

    @Test func folderOrFIFOInPlaceOfFile() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let folder = fixture.path("folder.jsonl")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let fifo = fixture.path("fifo.jsonl")
        try makeFIFO(fifo)

        for (output, kind) in [(folder, "a folder"), (fifo, "a FIFO")] {
            let result = runCommandLine(fixture.folderArguments(output: output, extra: ["--format", "jsonl"]))

            #expect(result.status == 1, "\(output): \(result.error)")
            #expect(result.error.contains("--output '\(output)' is \(kind)"), "\(result.error)")
            #expect(!result.error.contains("NSCocoaErrorDomain"))
        }
        let list = fixture.path("list.txt")
        try makeFIFO(list)
        let listed = runCommandLine([
            "embed", "--model", fixture.model, "--list", list, "--output", fixture.path("o.jsonl"),
        ])
        #expect(listed.status == 1)
        #expect(listed.error.contains("--list '\(list)' is a FIFO"), "\(listed.error)")
    }

    @Test func fileInPlaceOfFolder() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let file = fixture.path("taken")
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: file))

        let saved = runCommandLine(fixture.folderArguments(output: fixture.path("o.jsonl"), extra: ["--save-aligned", file]))
        // --roc is checked before the model loads, so the missing model is never reached.
        let roc = runCommandLine(["eval", "--model", fixture.path("missing.safetensors"), "--roc", file, "set.bin"])

        for result in [saved, roc] {
            #expect(result.status == 1)
            #expect(result.error.contains("'\(file)' is an existing file, expected a folder"), "\(result.error)")
            #expect(!result.error.contains("NSCocoaErrorDomain"))
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.path("o.jsonl")))
        #expect(try contents(file) == Data("not a folder".utf8))
    }

    @Test func missingOutputFolderIsRejected() throws {
        let fixture = try BatchFixture()
        defer { fixture.remove() }
        let missing = fixture.path("missing")

        let result = runCommandLine(fixture.folderArguments(output: missing + "/o.jsonl"))

        #expect(result.status == 1)
        #expect(result.error.contains("the folder '\(missing)' of --output"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test func tensorOutputNeedsNpyExtension() {
        let result = runCommandLine(["embed", "--model", "m.safetensors", "--tensor", "x.npy", "--output", "e.txt"])

        #expect(result.status == 2)
        #expect(result.error.contains("must end in .npy, found '.txt'"), "\(result.error)")
    }

    @Test func compareSaveAlignedNeedsLandmarks() {
        let result = runCommandLine(["compare", "--model", "m.safetensors", "--save-aligned", "dir", "a.png", "b.png"])

        #expect(result.status == 2)
        #expect(result.error.contains("--save-aligned applies only with --landmarks-a or --landmarks-b"), "\(result.error)")
    }

    @Test func nonFiniteLandmarkIsNamed() {
        let result = runCommandLine([
            "compare", "--model", "m.safetensors", "--landmarks-a", "nan,2,3,4,5,6,7,8,9,10", "a.png", "b.png",
        ])

        #expect(result.status == 2)
        #expect(result.error.contains("--landmarks-a value 1 is 'nan', expected a finite number"), "\(result.error)")
    }
}

@Suite struct StandardOutputFailureTests {
    /// Makes a console whose standard output fails like a full disk.
    static func failingConsole(_ streams: CapturedStreams) -> Console {
        Console(
            writeOutput: { _ in
                throw StandardOutputError(underlying: POSIXError(.ENOSPC))
            },
            writeError: { streams.error += $0 })
    }

    @Test func helpAndCommandsEndWithStatusOne() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try convertParityModel(into: directory)

        for arguments in [["--help"], ["--version"], ["convert", "--help"], ["inspect", model]] {
            let streams = CapturedStreams()

            let status = AuraFaceCommandLine.run(arguments, console: Self.failingConsole(streams))

            #expect(status == 1, "\(arguments)")
            #expect(streams.error == "auraface: error: failed to write to standard output: No space left on device\n", "\(arguments)")
        }
    }

    @Test func foundationWriteErrorIsDescribed() {
        let cocoa = CocoaError(.fileWriteUnknown, userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EBADF))])

        let message = StandardOutputError(underlying: cocoa).description

        #expect(message == "failed to write to standard output: Bad file descriptor")
    }
}
