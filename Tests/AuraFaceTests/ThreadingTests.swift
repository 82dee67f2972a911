// The per-model thread budget: results that do not depend on the thread count, the batch or
// concurrent callers, and an OpenBLAS pool that stays at one thread.

import Dispatch
import Foundation
import Testing

@testable import AuraFace

@Suite struct ThreadingTests {
    /// Small enough for test speed, but with layers that the engine splits into several
    /// blocks: a 64x64 stem (4096 output columns), a strided 3x3 convolution with 1024 output
    /// columns, 128 output channels in the last downsample and a 256-d embedding.
    static let splitArchitecture = IResNetArchitecture(
        stageDepths: [1, 2, 1, 1], stageWidths: [8, 16, 32, 128], stemWidth: 8, embeddingSize: 256,
        inputSize: 64)

    /// Faces A, B, A, C: the batch the guarantees are stated for.
    static func batchInput(_ architecture: IResNetArchitecture) -> (batch: [Float], images: [[Float]]) {
        let imageSize = architecture.inputChannels * architecture.inputSize * architecture.inputSize
        var random = SeededRandom(seed: 91)
        let a = random.floats(imageSize)
        let b = random.floats(imageSize)
        let c = random.floats(imageSize)
        return (a + b + a + c, [a, b, a, c])
    }

    @Test func testArchitectureIsSplit() {
        // The tests below are worth something only if these layers really are split.
        #expect(gemmBlocks(m: 8, n: 64 * 64).count > 1)
        #expect(gemmBlocks(m: 16, n: 32 * 32).count > 1)
        #expect(gemmBlocks(m: 128, n: 4 * 4).count > 1)
        #expect(gemmBlocks(m: 1, n: 256, columnBlock: 128).count > 1)
        // layer4's Winograd conv1: 128 output channels, 32 input channels, 4 x 4 tiles.
        if OpenBLAS.hasSmallMatrixKernel {
            #expect(smallKernelRowBlock(m: 128, n: 16, k: 32) < 128)
        }
    }

    @Test func gemmBlocksCoverProductOnce() {
        for (m, n) in [(1, 1), (7, 5000), (512, 49), (64, 3136), (130, 511), (1, 512)] {
            var covered = [Int](repeating: 0, count: m * n)
            for block in gemmBlocks(m: m, n: n) {
                for row in block.rows {
                    for column in block.columns {
                        covered[row * n + column] += 1
                    }
                }
            }
            #expect(covered.allSatisfy { $0 == 1 }, "\(m)x\(n)")
        }
    }

    @Test(arguments: ConvolutionAlgorithm.allCases)
    func sameBitsForAnyThreadsAndBatch(_ algorithm: ConvolutionAlgorithm) throws {
        let architecture = Self.splitArchitecture
        let file = try SyntheticWeights.file(architecture, seed: 17)
        let (batch, images) = Self.batchInput(architecture)
        let serial = try AuraFaceModel(safeTensors: file, threads: 1, convolution: algorithm)
        #expect(serial.threadCount == 1)
        let reference = try images.map { try serial.rawEmbeddings(normalizedInput: $0, batchSize: 1)[0] }
        #expect(reference[0] != reference[1], "different faces give different embeddings")

        for threads in [1, 2, 3] {
            let model = try serial.withThreadCount(threads)
            #expect(model.threadCount == threads)
            let batched = try model.rawEmbeddings(normalizedInput: batch, batchSize: 4)
            #expect(batched == reference, "batch [A, B, A, C] with \(threads) threads")
            for (index, image) in images.enumerated() {
                let single = try model.rawEmbeddings(normalizedInput: image, batchSize: 1)
                #expect(single[0] == reference[index], "image \(index) alone with \(threads) threads")
            }
        }
        // A model loaded with its own thread count, not a view of another one, agrees too.
        let loaded = try AuraFaceModel(safeTensors: file, threads: 3, convolution: algorithm)
        #expect(try loaded.rawEmbeddings(normalizedInput: batch, batchSize: 4) == reference)
    }

    @Test func concurrentCallersMatchSerial() throws {
        let architecture = Self.splitArchitecture
        let file = try SyntheticWeights.file(architecture, seed: 19)
        let model = try AuraFaceModel(safeTensors: file, threads: 2)
        let (batch, images) = Self.batchInput(architecture)
        let expected = try model.rawEmbeddings(normalizedInput: batch, batchSize: 4)

        // Results land in slots owned by one call each, behind a lock.
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var values: [[[Float]]?]
            init(count: Int) { values = Array(repeating: nil, count: count) }
        }
        let callers = 8
        let results = Results(count: callers)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            // Half the callers run the batch, half one image, to mix the buffer sizes.
            let output: [[Float]]?
            if caller % 2 == 0 {
                output = try? model.rawEmbeddings(normalizedInput: batch, batchSize: 4)
            } else {
                let index = caller / 2 % images.count
                output = try? model.rawEmbeddings(normalizedInput: images[index], batchSize: 1)
            }
            results.lock.lock()
            results.values[caller] = output
            results.lock.unlock()
        }
        for caller in 0..<callers {
            let output = try #require(results.values[caller], "caller \(caller) failed")
            if caller % 2 == 0 {
                #expect(output == expected, "caller \(caller)")
            } else {
                #expect(output == [expected[caller / 2 % images.count]], "caller \(caller)")
            }
        }
    }

    @Test func threadCountIsPerModel() throws {
        let file = try SyntheticWeights.file(SyntheticWeights.tinyArchitecture, seed: 23)
        let defaultModel = try AuraFaceModel(safeTensors: file)
        #expect(defaultModel.threadCount == AuraFaceModel.defaultThreadCount)
        #expect(AuraFaceModel.defaultThreadCount >= 1)
        let three = try AuraFaceModel(safeTensors: file, threads: 3)
        let one = try AuraFaceModel(safeTensors: file, threads: 1)
        #expect(three.threadCount == 3)
        #expect(one.threadCount == 1)

        // Loading models with several threads leaves OpenBLAS's own pool at one thread, so the
        // threads do not multiply.
        #expect(try AuraFaceModel.blasInfo.threads == 1)

        #expect(throws: BLASError.invalidThreadCount(0)) { try AuraFaceModel(safeTensors: file, threads: 0) }
        #expect(throws: BLASError.invalidThreadCount(-2)) { try one.withThreadCount(-2) }
    }
}
