// auraface-bench: times loading a converted weight file and AuraFaceModel.rawEmbeddings on
// the CPU, per batch size and model thread count. Tools/benchmark.sh runs it next to
// Tools/bench_onnxruntime.py, which measures onnxruntime the same way on the source ONNX file.

import AuraFace
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One batch size and thread count: timings per face and the memory when it finished.
struct ConfigurationResult: Codable {
    var batchSize: Int
    var threads: Int
    /// The model's threadCount while this configuration ran.
    var modelThreadCount: Int
    /// openblas_get_num_threads() while this configuration ran (AuraFace keeps it at 1).
    var blasThreadsInUse: Int
    var warmup: Int
    /// Wall-clock milliseconds per face (time of one batch divided by its size).
    var msPerFace: TimingSummary
    /// CPU milliseconds (user + system, all threads) per face, to show how busy the threads were.
    var cpuMsPerFace: TimingSummary
    var msPerFaceSamples: [Double]
    var memoryAfter: MemoryReport
    /// The activation buffers the model kept between calls when the configuration finished
    /// (`AuraFaceModel.cachedBufferBytes`), in MiB.
    var cachedBuffersMiB: Double
}

struct BLASReport: Codable {
    var coreName: String
    var config: String
    var threads: Int
    var coreTypeSource: String
    var requestedCoreType: String?
    var libraryPath: String

    init(_ info: BLASInfo) {
        coreName = info.coreName
        config = info.config
        threads = info.threads
        coreTypeSource = info.coreTypeSource.rawValue
        requestedCoreType = info.requestedCoreType
        libraryPath = info.libraryPath
    }
}

struct LoadResult: Codable {
    /// Milliseconds per load: reading, checking and arranging every tensor of the file.
    var ms: TimingSummary
    var samples: [Double]
}

struct BenchmarkReport: Codable {
    var tool = "auraface-bench"
    var command: [String]
    var date: String
    var model: String
    var modelBytes: Int
    var architecture: String
    var inputShape: [Int]
    var seed: UInt64
    var openBLASCoreTypeEnvironment: String?
    var blas: BLASReport
    var load: LoadResult
    var memoryAfterLoad: MemoryReport
    var configurations: [ConfigurationResult]
    var memoryPeak: MemoryReport
}

/// A benchmark that could not run: the file would not load or the engine returned bad output.
struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
}

func loadModel(options: BenchmarkOptions) throws -> (AuraFaceModel, LoadResult) {
    let url = URL(fileURLWithPath: options.modelPath)
    // Loading OpenBLAS once before the timed loads keeps dlopen out of the first sample.
    _ = try AuraFaceModel.blasInfo
    var samples: [Double] = []
    var model: AuraFaceModel?
    for _ in 0..<options.loadRuns {
        // Drop the previous model first so that at most one copy of the weights is resident.
        model = nil
        let (loaded, ms) = try measureMilliseconds { try AuraFaceModel(contentsOf: url, convolution: options.convolution) }
        model = loaded
        samples.append(ms)
    }
    return (model!, LoadResult(ms: TimingSummary(samples), samples: samples))
}

func checkEmbeddings(_ embeddings: [[Float]], batchSize: Int, embeddingSize: Int) throws {
    guard embeddings.count == batchSize else {
        throw BenchmarkError(description: "the engine returned \(embeddings.count) embeddings for a batch of \(batchSize)")
    }
    for (index, embedding) in embeddings.enumerated() {
        guard embedding.count == embeddingSize, embedding.allSatisfy(\.isFinite) else {
            throw BenchmarkError(
                description: "embedding \(index) has \(embedding.count) values or non-finite ones, "
                    + "expected \(embeddingSize) finite values")
        }
    }
}

func runConfiguration(
    model loaded: AuraFaceModel, batchSize: Int, threads: Int, options: BenchmarkOptions
) throws -> ConfigurationResult {
    // The thread count is per model: a view of the loaded weights with this configuration's.
    let model = try loaded.withThreadCount(threads)
    let architecture = model.architecture
    let imageSize = architecture.inputChannels * architecture.inputSize * architecture.inputSize
    // A graph that normalizes its own input takes 0-255 pixels. Any other graph takes the
    // normalized values, which lie in [-1, 1] for AuraFace's (v - 127.5) / 127.5.
    let range: ClosedRange<Float> = model.metadata.inputNormalizationInGraph ? 0...255 : -1...1
    let input = randomInput(count: batchSize * imageSize, seed: options.seed, range: range)

    for _ in 0..<options.warmup {
        let embeddings = try model.rawEmbeddings(graphInput: input, batchSize: batchSize)
        try checkEmbeddings(embeddings, batchSize: batchSize, embeddingSize: architecture.embeddingSize)
    }
    var wall: [Double] = []
    var cpu: [Double] = []
    for _ in 0..<options.runs {
        let cpuStart = processCPUTimeMilliseconds()
        let (embeddings, ms) = try measureMilliseconds {
            try model.rawEmbeddings(graphInput: input, batchSize: batchSize)
        }
        cpu.append((processCPUTimeMilliseconds() - cpuStart) / Double(batchSize))
        wall.append(ms / Double(batchSize))
        try checkEmbeddings(embeddings, batchSize: batchSize, embeddingSize: architecture.embeddingSize)
    }
    return ConfigurationResult(
        batchSize: batchSize, threads: threads, modelThreadCount: model.threadCount,
        blasThreadsInUse: try AuraFaceModel.blasInfo.threads,
        warmup: options.warmup, msPerFace: TimingSummary(wall), cpuMsPerFace: TimingSummary(cpu),
        msPerFaceSamples: wall, memoryAfter: .current(),
        cachedBuffersMiB: Double(model.cachedBufferBytes) / 1_048_576)
}

func format(_ value: Double, _ digits: Int = 1) -> String {
    String(format: "%.\(digits)f", value)
}

func printTable(_ report: BenchmarkReport) {
    let blas = report.blas
    print("model: \(report.model) (\(report.architecture), \(report.modelBytes / 1_000_000) MB)")
    print("OpenBLAS: core \(blas.coreName) (\(blas.coreTypeSource)), \(blas.config)")
    print("          \(blas.libraryPath)")
    let load = report.load.ms
    print("load: median \(format(load.median)) ms over \(load.count) loads "
        + "(min \(format(load.min)), max \(format(load.max)))")
    print("RSS after load: \(format(report.memoryAfterLoad.vmRSSMiB ?? .nan)) MiB")
    guard !report.configurations.isEmpty else { return }
    print("")
    print("batch  threads  runs  ms/face median     min     max     IQR  cpu ms/face  peak RSS MiB")
    for result in report.configurations {
        let time = result.msPerFace
        let columns = [
            String(result.batchSize).padding(5), String(result.modelThreadCount).padding(8),
            String(time.count).padding(5), format(time.median).padding(14), format(time.min).padding(7),
            format(time.max).padding(7), format(time.iqr).padding(7),
            format(result.cpuMsPerFace.median).padding(11), format(result.memoryAfter.maxRSSMiB).padding(12),
        ]
        print(columns.joined(separator: "  "))
    }
}

extension String {
    /// Right-aligns the string in `width` columns.
    func padding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// Checks on the loaded weights that each face of the batch [A, B, A, C] gets exactly its
/// single-image embedding, with every thread count in `options.threadCounts`.
func verifyBits(model loaded: AuraFaceModel, options: BenchmarkOptions) throws {
    let architecture = loaded.architecture
    let imageSize = architecture.inputChannels * architecture.inputSize * architecture.inputSize
    let range: ClosedRange<Float> = loaded.metadata.inputNormalizationInGraph ? 0...255 : -1...1
    let faces = (0..<3).map { randomInput(count: imageSize, seed: options.seed &+ UInt64($0), range: range) }
    let batch = faces[0] + faces[1] + faces[0] + faces[2]
    let order = [0, 1, 0, 2]
    var reference: [[Float]]?
    for threads in options.threadCounts {
        let model = try loaded.withThreadCount(threads)
        let singles = try faces.map { try model.rawEmbeddings(graphInput: $0, batchSize: 1)[0] }
        let batched = try model.rawEmbeddings(graphInput: batch, batchSize: 4)
        for (row, face) in order.enumerated() where batched[row] != singles[face] {
            throw BenchmarkError(description: "\(threads) threads: batch row \(row) differs from face \(face) alone")
        }
        if let reference, reference != singles {
            throw BenchmarkError(description: "\(threads) threads: embeddings differ from \(options.threadCounts[0]) threads")
        }
        reference = singles
        print("\(threads) threads: batch [A, B, A, C] rows equal the single-image embeddings bit for bit")
    }
    print("all thread counts \(options.threadCounts) give the same bits")
}

func run(_ options: BenchmarkOptions) throws {
    let environmentCoreType = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
    let (model, load) = try loadModel(options: options)
    if options.verifyBits {
        try verifyBits(model: model, options: options)
        return
    }
    let memoryAfterLoad = MemoryReport.current()

    var results: [ConfigurationResult] = []
    if !options.loadOnly {
        for batchSize in options.batchSizes {
            for threads in options.threadCounts {
                results.append(try runConfiguration(model: model, batchSize: batchSize, threads: threads, options: options))
            }
        }
    }

    let architecture = model.architecture
    let attributes = try FileManager.default.attributesOfItem(atPath: options.modelPath)
    let report = BenchmarkReport(
        command: CommandLine.arguments,
        date: ISO8601DateFormatter().string(from: Date()),
        model: options.modelPath,
        modelBytes: (attributes[.size] as? Int) ?? 0,
        architecture: architecture.name,
        inputShape: [architecture.inputChannels, architecture.inputSize, architecture.inputSize],
        seed: options.seed,
        openBLASCoreTypeEnvironment: environmentCoreType,
        blas: BLASReport(try AuraFaceModel.blasInfo),
        load: load,
        memoryAfterLoad: memoryAfterLoad,
        configurations: results,
        memoryPeak: .current())
    printTable(report)

    if let jsonPath = options.jsonPath {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // writeFileAtomically, unlike Data.write(options: .atomic), never renames over a
        // device, FIFO or folder given as the output path.
        try writeFileAtomically([UInt8](encoder.encode(report)), to: URL(fileURLWithPath: jsonPath))
    }
}

do {
    let options = try BenchmarkOptions.parse(Array(CommandLine.arguments.dropFirst()))
    try run(options)
} catch let error as UsageError where error.helpRequested {
    print(BenchmarkOptions.usage)
} catch let error as UsageError {
    FileHandle.standardError.write(Data("auraface-bench: \(error)\n\nrun auraface-bench --help for the options\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("auraface-bench: error: \(error)\n".utf8))
    exit(1)
}
