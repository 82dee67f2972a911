// Paths that are not regular files: readers reject FIFOs and folders at once instead of
// blocking, and the atomic writer never renames over a FIFO, folder or socket. Every
// "not a regular file" case is made inside a temporary folder, never under /dev.
// The time limits turn a regression (a read that blocks on a FIFO) into a failure.

import Foundation
import Testing

@testable import AuraFace

#if canImport(Glibc)
    import Glibc
#endif

/// A temporary folder holding a FIFO named `name`, removed by `remove()`.
private struct FIFOFolder {
    let folder: URL
    let fifo: URL

    init(name: String) throws {
        folder = try temporaryDirectory()
        fifo = folder.appendingPathComponent(name)
        try #require(mkfifo(fifo.path, 0o644) == 0, "mkfifo failed: \(String(cString: strerror(errno)))")
    }

    func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Returns true when `path` exists and lstat reports a FIFO.
private func isFIFO(_ path: String) -> Bool {
    var status = stat()
    return lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO
}

private let fifoReason = "expected a regular file, found a FIFO (named pipe)"

@Suite(.timeLimit(.minutes(1))) struct FileKindTests {
    // MARK: Readers

    @Test func safeTensorsReadersRejectFIFO() throws {
        let setup = try FIFOFolder(name: "w.safetensors")
        defer { setup.remove() }
        let path = setup.fifo.path
        #expect(throws: WeightFileError.unreadable(path: path, reason: fifoReason)) {
            try SafeTensorsFile(contentsOf: setup.fifo)
        }
        #expect(throws: WeightFileError.unreadable(path: path, reason: fifoReason)) {
            try SafeTensorsFileReader.withOpened(path: path) { _ throws(WeightFileError) in }
        }
        let error = #expect(throws: WeightFileError.self) { try AuraFaceModel(contentsOf: setup.fifo) }
        #expect(error?.description == "cannot read '\(path)': \(fifoReason)")
    }

    @Test func safeTensorsReaderRejectsSymlinkToFIFO() throws {
        let setup = try FIFOFolder(name: "pipe")
        defer { setup.remove() }
        let link = setup.folder.appendingPathComponent("w.safetensors")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: setup.fifo)
        #expect(throws: WeightFileError.unreadable(path: link.path, reason: fifoReason)) {
            try SafeTensorsFile(contentsOf: link)
        }
    }

    @Test func imageReadersRejectFIFO() throws {
        let setup = try FIFOFolder(name: "face.png")
        defer { setup.remove() }
        let path = setup.fifo.path
        #expect(throws: PNGError.unreadable(path: path, reason: fifoReason)) {
            _ = try PNGImage.read(contentsOf: setup.fifo)
        }
        #expect(throws: JPEGError.unreadable(path: path, reason: fifoReason)) {
            _ = try JPEGImage.read(contentsOf: setup.fifo)
        }
        #expect(throws: PPMError.unreadable(path: path, reason: fifoReason)) {
            _ = try PPMImage.read(contentsOf: setup.fifo)
        }
        #expect(throws: PhotoFileError.unreadable(path: path, reason: fifoReason)) {
            _ = try PhotoFile.read(contentsOf: setup.fifo)
        }
    }

    @Test func photoReaderNamesFolderAndMissingFile() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(
            throws: PhotoFileError.unreadable(
                path: folder.path, reason: "expected a regular file, found a directory")
        ) {
            _ = try PhotoFile.read(contentsOf: folder)
        }
        let missing = folder.appendingPathComponent("missing.jpg")
        #expect(throws: PhotoFileError.unreadable(path: missing.path, reason: "No such file or directory")) {
            _ = try PhotoFile.read(contentsOf: missing)
        }
    }

    @Test func npyReaderRejectsFIFO() throws {
        let setup = try FIFOFolder(name: "x.npy")
        defer { setup.remove() }
        #expect(throws: NpyError.unreadable(path: setup.fifo.path, reason: fifoReason)) {
            _ = try NpyArray(contentsOf: setup.fifo)
        }
    }

    @Test func landmarksReaderRejectsFIFO() throws {
        let setup = try FIFOFolder(name: "landmarks.txt")
        defer { setup.remove() }
        #expect(throws: LandmarksFileError.unreadable(path: setup.fifo.path, reason: fifoReason)) {
            _ = try LandmarksFile(contentsOf: setup.fifo)
        }
    }

    @Test func verificationSetReaderRejectsFIFO() throws {
        let setup = try FIFOFolder(name: "lfw.bin")
        defer { setup.remove() }
        #expect(throws: VerificationSetError.unreadable(path: setup.fifo.path, reason: fifoReason)) {
            _ = try VerificationSet(contentsOf: setup.fifo)
        }
    }

    @Test func characterDeviceIsRejectedWithoutReading() {
        // /dev/zero is only read here: a reader that opened and read it would never reach
        // the end of the file.
        #expect(
            throws: NpyError.unreadable(
                path: "/dev/zero", reason: "expected a regular file, found a character device")
        ) {
            _ = try NpyArray(contentsOf: URL(fileURLWithPath: "/dev/zero"))
        }
    }

    @Test func shrunkWeightFileReportsItsCurrentSize() throws {
        var writer = SafeTensorsWriter()
        writer.add(name: "a", shape: [6], values: [1, 2, 3, 4, 5, 6])
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.safetensors")
        try writer.write(to: url)
        let error = #expect(throws: WeightFileError.self) {
            try SafeTensorsFileReader.withOpened(path: url.path) { file throws(WeightFileError) in
                // Another process cuts the file to 3 bytes, well before the tensor starts.
                #expect(truncate(url.path, 3) == 0)
                _ = try file.floats(for: file.header.entry(named: "a")!)
            }
        }
        let start = try SafeTensorsFile(bytes: writer.serialized(), path: url.path).dataStart
        #expect(
            error == .unreadable(
                path: url.path,
                reason: "tensor 'a' needs bytes \(start)..<\(start + 24), but the file now has 3 bytes: "
                    + "it shrank after it was opened"))
    }

    // MARK: Atomic writer

    @Test func writerRejectsFIFO() throws {
        let setup = try FIFOFolder(name: "out.safetensors")
        defer { setup.remove() }
        let error = #expect(throws: WeightFileError.self) {
            try writeFileAtomically([1, 2, 3], to: setup.fifo)
        }
        #expect(
            error == .unwritable(
                path: setup.fifo.path, reason: "it exists and is not replaced: \(fifoReason)"))
        #expect(isFIFO(setup.fifo.path))
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: setup.folder.path) == ["out.safetensors"])
    }

    @Test func writerRejectsSymlinkToFIFO() throws {
        let setup = try FIFOFolder(name: "pipe")
        defer { setup.remove() }
        let link = setup.folder.appendingPathComponent("out.npy")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: setup.fifo)
        let error = #expect(throws: WeightFileError.self) {
            try writeFileAtomically([1, 2, 3], to: link)
        }
        let resolved = setup.fifo.resolvingSymlinksInPath().path
        #expect(
            error == .unwritable(
                path: link.path,
                reason: "it is a symbolic link to '\(resolved)', which is not replaced: \(fifoReason)"))
        #expect(isFIFO(setup.fifo.path))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == setup.fifo.path)
    }

    @Test func writerRejectsSymlinkToFolder() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        let link = folder.appendingPathComponent("out.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        // isDirectory: false, so the path does not end in '/' and the link itself is checked.
        let url = URL(fileURLWithPath: link.path, isDirectory: false)
        let error = #expect(throws: WeightFileError.self) { try writeFileAtomically([1], to: url) }
        let resolved = target.resolvingSymlinksInPath().path
        #expect(
            error == .unwritable(
                path: url.path,
                reason: "it is a symbolic link to '\(resolved)', which is not replaced: "
                    + "expected a regular file, found a directory"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == target.path)
    }

    @Test func writerRejectsDanglingSymlink() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let link = folder.appendingPathComponent("out.safetensors")
        try FileManager.default.createSymbolicLink(
            atPath: link.path, withDestinationPath: folder.appendingPathComponent("missing").path)
        let error = #expect(throws: WeightFileError.self) { try writeFileAtomically([1], to: link) }
        #expect(
            error == .unwritable(
                path: link.path,
                reason: "it is a symbolic link whose target cannot be resolved (No such file or directory); "
                    + "expected a regular file or a new path"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("missing").path))
    }

    @Test func writerRejectsSocket() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let socketURL = folder.appendingPathComponent("out.sock")
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketURL.path.utf8)
        try #require(pathBytes.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0, "bind failed: \(String(cString: strerror(errno)))")

        let error = #expect(throws: WeightFileError.self) { try writeFileAtomically([1], to: socketURL) }
        #expect(
            error == .unwritable(
                path: socketURL.path,
                reason: "it exists and is not replaced: expected a regular file, found a socket"))
        #expect(throws: NpyError.unreadable(path: socketURL.path, reason: "expected a regular file, found a socket")) {
            _ = try NpyArray(contentsOf: socketURL)
        }
    }

    @Test func writerReplacesFileBehindSymlinkAndKeepsLink() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sub = folder.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        let target = sub.appendingPathComponent("real.bin")
        try writeFileAtomically([1, 2, 3], to: target)
        let link = folder.appendingPathComponent("link.bin")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "sub/real.bin")

        try writeFileAtomically([7, 8], to: link)

        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == "sub/real.bin")
        #expect([UInt8](try Data(contentsOf: target)) == [7, 8])
        #expect([UInt8](try Data(contentsOf: link)) == [7, 8])
        #expect(try FileManager.default.contentsOfDirectory(atPath: sub.path) == ["real.bin"])
    }

    @Test func writerReplacesRegularFile() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("w.bin")
        try writeFileAtomically([1, 2, 3], to: url)
        try writeFileAtomically([], to: url)
        #expect(try Data(contentsOf: url).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["w.bin"])
    }
}

// MARK: Architecture size limits

@Suite struct ArchitectureSizeLimitTests {
    /// The architecture of a break-test file: every field is within its own limit, but the
    /// FLOPs per image (about 8.8e20) overflow `Int`.
    static let oversized = IResNetArchitecture(
        stageDepths: [1024, 1024, 1024, 1024], stageWidths: [65536, 65536, 65536, 65536],
        stemWidth: 65536, embeddingSize: 65536, inputSize: 4096, inputChannels: 3)

    @Test func oversizedArchitectureIsRejectedInMetadata() throws {
        var values = WeightFileMetadata(architecture: .r18).dictionary
        values["stage_depths"] = "[1024,1024,1024,1024]"
        values["stage_widths"] = "[65536, 65536, 65536, 65536]"
        values["stem_width"] = "65536"
        values["embedding_size"] = "65536"
        values["input_size"] = "4096"
        let error = #expect(throws: WeightFileError.self) {
            try WeightFileMetadata(dictionary: values, path: "big.safetensors")
        }
        let (parameters, flops) = Self.oversized.approximateCounts()
        #expect(parameters > 1e14)
        #expect(flops > Double(Int.max))
        #expect(
            error == .invalidMetadata(
                path: "big.safetensors", key: "architecture",
                reason: "the network would have about \(IResNetArchitecture.scientific(parameters)) parameters "
                    + "and \(IResNetArchitecture.scientific(flops)) FLOPs per image; expected both below 2^53 "
                    + "(9.0e15)"))
        #expect(error?.description.contains("big.safetensors") == true)
    }

    @Test func countsMatchLayerSummary() throws {
        let odd = IResNetArchitecture(
            stageDepths: [1, 2, 3, 1], stageWidths: [8, 24, 40, 16], stemWidth: 12, embeddingSize: 20,
            inputSize: 48, inputChannels: 1)
        for architecture in [IResNetArchitecture.r100, .r18, odd] {
            try architecture.validate()
            let rows = architecture.layerSummary(foldedBatchNorms: [])
            let (parameters, flops) = architecture.approximateCounts()
            #expect(Double(rows.reduce(0) { $0 + $1.parameters }) == parameters)
            #expect(Double(rows.reduce(0) { $0 + $1.flops }) == flops)
        }
        // The figures the README gives for AuraFace.
        let (parameters, flops) = IResNetArchitecture.r100.approximateCounts()
        #expect((65_000_000.0...65_300_000).contains(parameters))
        #expect((24.1e9...24.3e9).contains(flops))
    }

    @Test func largestAcceptedArchitectureSummarizesWithoutOverflow() throws {
        // Near the bound: wide stages at a large input, but below 2^53 FLOPs.
        let wide = IResNetArchitecture(
            stageDepths: [1, 1, 1, 1], stageWidths: [4096, 4096, 4096, 4096], stemWidth: 4096,
            embeddingSize: 65536, inputSize: 1024, inputChannels: 3)
        try wide.validate()
        let rows = wide.layerSummary(foldedBatchNorms: [])
        let total = rows.reduce(0) { $0 + $1.flops }
        #expect(Double(total) == wide.approximateCounts().flops)
        #expect(Double(total) < IResNetArchitecture.maxCount)
    }

    @Test func formatsCountsWithTwoSignificantDigits() {
        #expect(IResNetArchitecture.scientific(9_007_199_254_740_992) == "9.0e15")
        #expect(IResNetArchitecture.scientific(24_200_000_000) == "2.4e10")
        #expect(IResNetArchitecture.scientific(9.96) == "1.0e1")
        #expect(IResNetArchitecture.scientific(3) == "3.0e0")
    }
}

// MARK: Inference error wording

@Test func nonFiniteOutputMessageNamesInputAndWeights() {
    let message = InferenceError.nonFiniteOutput(image: 2, count: 512).description
    #expect(message.hasSuffix("overflowed float32 (check the input and the weights)"))
}
