// auraface-soak: computes many embeddings with one loaded model through the public API only.
// It checks that every output is finite and that a fixed probe image keeps the same
// bits, and it reports resident memory over the run with its least-squares trend.
// Tools/soak.sh builds and runs it.

import AuraFace
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A check that failed: a non-finite or changed embedding, a memory trend over the limit, or
/// a run too short to measure a trend.
struct SoakFailure: Error, CustomStringConvertible {
    var description: String
}

/// Prints the memory that the model's weights take, computed from the architecture. It counts
/// the file's tensors as float32. With Winograd in use, each 3x3 stride-1 kernel counts as
/// its transform, 16 values instead of 9.
func printWeightFootprint(model: AuraFaceModel, fileBytes: Int, convolution: ConvolutionAlgorithm) {
    let architecture = model.architecture
    let tensors = architecture.expectedTensors(foldedBatchNorms: Set(model.metadata.foldedBatchNorms))
    let totalFloats = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
    let summary = AuraFaceModel.layerSummary(for: architecture, foldedBatchNorms: [])
    let winogradLayers = Set(summary.filter { $0.kind == "Conv2d 3x3 stride 1" }.map { $0.name + ".weight" })
    let winogradFloats = tensors.filter { winogradLayers.contains($0.name) }.reduce(0) { $0 + $1.shape.reduce(1, *) }
    let residentFloats = convolution == .winograd ? totalFloats - winogradFloats + winogradFloats / 9 * 16 : totalFloats

    func mib(_ floats: Int) -> String { String(format: "%.1f MiB", Double(floats * 4) / 1_048_576) }
    print("weights: file \(String(format: "%.1f MiB", Double(fileBytes) / 1_048_576)), "
        + "\(totalFloats) float32 values (\(mib(totalFloats))), of which 3x3 stride-1 kernels \(mib(winogradFloats))")
    if convolution == .winograd {
        print("         kept by the model with those kernels Winograd-transformed (x16/9): \(mib(residentFloats))")
    }
}

/// Runs one batch between two peak resets and prints the RSS before it, its peak and after.
func profileBatch(_ runner: inout CheckedRunner, size: Int, label: String) throws {
    guard let before = ResidentMemory.current(), ResidentMemory.resetPeak() else {
        print("\(label): cannot reset VmHWM through /proc/self/clear_refs, skipped")
        _ = try runner.runBatch(size: size, done: 0)
        return
    }
    _ = try runner.runBatch(size: size, done: 0)
    guard let after = ResidentMemory.current() else { return }
    print("\(label): RSS before \(mebibytes(before.rssKiB)) MiB, peak during \(mebibytes(after.peakKiB)) MiB "
        + "(+\(mebibytes(after.peakKiB - before.rssKiB))), after \(mebibytes(after.rssKiB)) MiB")
}

func rightAligned(_ text: String, width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

func run(_ options: SoakOptions) throws {
    // Loading OpenBLAS first keeps the library's own pages out of the load figures.
    let blas = try AuraFaceModel.blasInfo
    let baseline = ResidentMemory.current()
    let canResetPeak = ResidentMemory.resetPeak()

    let url = URL(fileURLWithPath: options.modelPath)
    let loadStart = ContinuousClock.now
    let model = try AuraFaceModel(contentsOf: url, threads: options.threads, convolution: options.convolution)
    let loadSeconds = (ContinuousClock.now - loadStart) / .seconds(1)
    let afterLoad = ResidentMemory.current()

    let fileBytes = (try? FileManager.default.attributesOfItem(atPath: options.modelPath)[.size] as? Int) ?? 0
    print("model: \(options.modelPath) (\(model.architecture.name), widths \(model.architecture.stageWidths), "
        + "embedding \(model.architecture.embeddingSize))")
    print("threads: \(model.threadCount) per forward pass; OpenBLAS core \(blas.coreName); "
        + "convolution \(options.convolution.rawValue)")
    print("run: \(options.count) embeddings, batch sizes cycling 1...\(options.maxBatch) "
        + "(\(options.cycleLength) per cycle), the last row of every batch the probe, "
        + "warm-up \(options.warmupEmbeddings), limit \(options.maxSlopeKiBPer1000) KiB per 1000 embeddings")
    print("")
    print("== memory profile")
    printWeightFootprint(model: model, fileBytes: fileBytes, convolution: options.convolution)
    if let baseline, let afterLoad {
        let peak = canResetPeak ? "peak during load \(mebibytes(afterLoad.peakKiB)) MiB, " : ""
        print("load: \(String(format: "%.2f", loadSeconds)) s, RSS before \(mebibytes(baseline.rssKiB)) MiB, "
            + "\(peak)after \(mebibytes(afterLoad.rssKiB)) MiB (+\(mebibytes(afterLoad.rssKiB - baseline.rssKiB)))")
    }
    let images = SyntheticImages(
        imageSize: model.architecture.inputChannels * model.architecture.inputSize * model.architecture.inputSize,
        mean: model.metadata.inputMean, scale: model.metadata.inputScale, seed: options.seed)
    var runner = CheckedRunner(model: model, images: images, allowBatchVariation: options.allowBatchVariation)
    try profileBatch(&runner, size: 1, label: "batch 1")
    try profileBatch(&runner, size: options.maxBatch, label: "batch \(options.maxBatch)")

    print("")
    print("== run")
    print("embeddings  elapsed s  embeddings/s  VmRSS MiB  VmHWM MiB")
    var done = 0
    var batchNumber = 0
    var nextReport = options.reportEvery
    var cycleSamples: [MemorySample] = []
    var maxRSSAfterWarmup = 0
    let start = ContinuousClock.now

    func printProgress() {
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let memory = ResidentMemory.current()
        let columns = [
            String(format: "%10d", done),
            String(format: "%9.1f", seconds),
            String(format: "%12.2f", Double(done) / seconds),
            rightAligned(memory.map { mebibytes($0.rssKiB) } ?? "n/a", width: 9),
            rightAligned(memory.map { mebibytes($0.peakKiB) } ?? "n/a", width: 9),
        ]
        print(columns.joined(separator: "  "))
        fflush(nil)
    }

    while done < options.count {
        let size = min(batchNumber % options.maxBatch + 1, options.count - done)
        _ = try runner.runBatch(size: size, done: done)
        done += size
        batchNumber += 1

        if let memory = ResidentMemory.current(), done > options.warmupEmbeddings {
            maxRSSAfterWarmup = max(maxRSSAfterWarmup, memory.rssKiB)
            // Samples at the same point of the cycle, after its largest batch, so the batch
            // size does not add a saw-tooth to the fitted line.
            if size == options.maxBatch {
                cycleSamples.append(MemorySample(embeddings: done, rssKiB: memory.rssKiB))
            }
        }
        if done >= nextReport || done == options.count {
            printProgress()
            while nextReport <= done { nextReport += options.reportEvery }
        }
    }
    let seconds = (ContinuousClock.now - start) / .seconds(1)

    print("")
    print("== result")
    print(String(format: "%d embeddings in %.1f s (%.2f per second); ", done, seconds, Double(done) / seconds)
        + "the probe was checked \(runner.probeChecks) times and passed; all values finite")
    guard cycleSamples.count >= SoakOptions.minimumTrendSamples, let trend = MemoryTrend(cycleSamples) else {
        throw SoakFailure(
            description: "\(cycleSamples.count) RSS samples after the warm-up of \(options.warmupEmbeddings) "
                + "embeddings, expected at least 3 to fit a trend: raise --count or lower --warmup")
    }
    print("RSS after warm-up (\(trend.sampleCount) samples, one per cycle): "
        + "first \(mebibytes(trend.first.rssKiB)) MiB at \(trend.first.embeddings), "
        + "last \(mebibytes(trend.last.rssKiB)) MiB at \(trend.last.embeddings), "
        + "max \(mebibytes(maxRSSAfterWarmup)) MiB")
    print(String(format: "RSS trend after warm-up: %+.1f KiB per 1000 embeddings (limit %.1f)",
        trend.slopeKiBPer1000, options.maxSlopeKiBPer1000))
    guard trend.slopeKiBPer1000 <= options.maxSlopeKiBPer1000 else {
        throw SoakFailure(
            description: String(format: "RSS grows by %.1f KiB per 1000 embeddings after warm-up, expected at most %.1f",
                trend.slopeKiBPer1000, options.maxSlopeKiBPer1000))
    }
    print("soak passed")
}

do {
    try run(SoakOptions.parse(Array(CommandLine.arguments.dropFirst())))
} catch let error as UsageError where error.helpRequested {
    print(SoakOptions.usage)
} catch let error as UsageError {
    FileHandle.standardError.write(Data("auraface-soak: \(error)\n\nrun auraface-soak --help for the options\n".utf8))
    exit(2)
} catch let error as SoakFailure {
    fflush(nil)
    FileHandle.standardError.write(Data("auraface-soak: FAILED: \(error)\n".utf8))
    exit(1)
} catch {
    fflush(nil)
    FileHandle.standardError.write(Data("auraface-soak: error: \(error)\n".utf8))
    exit(1)
}
