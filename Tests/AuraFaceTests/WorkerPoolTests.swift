// The worker pool behind forEachRange, the buffers a model keeps between calls, and the row
// blocks sized for OpenBLAS's small-matrix kernel.

import Dispatch
import Foundation
import Synchronization
import Testing

@testable import AuraFace

@Suite struct WorkerPoolTests {
    /// Tests run in parallel and the shared pool may be busy with another test, so the tests
    /// that need the pool itself use one of their own.
    let pool = WorkerPool()

    /// Runs `parts` parts on `pool` and returns how often each part ran, or nil when the pool
    /// was busy.
    func partCounts(_ parts: Int) -> [Int]? {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: parts)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let ran = pool.run(parts: parts) { part in
            counts[part] += 1
        }
        return ran ? Array(counts) : nil
    }

    @Test func runsEveryPartOnce() {
        for parts in 1...8 {
            let counts = partCounts(parts)
            #expect(counts == [Int](repeating: 1, count: parts), "\(parts) parts")
        }
    }

    @Test func rejectsMorePartsThanHelpers() {
        let ran = pool.run(parts: WorkerPool.maxHelpers + 2) { _ in }
        #expect(!ran)
    }

    @Test func busyPoolFallsBackToDispatch() {
        // Part 0 runs on the caller while the caller owns the pool, so a nested call finds it
        // busy. forEachRange must then still cover every index.
        var nestedRan: Bool?
        var nestedCovered = [Int](repeating: 0, count: 100)
        let ran = pool.run(parts: 2) { part in
            guard part == 0 else { return }
            nestedRan = pool.run(parts: 2) { _ in }
            nestedCovered.withUnsafeMutableBufferPointer { covered in
                forEachRange(count: 100, workers: 3) { range in
                    for index in range {
                        covered[index] += 1
                    }
                }
            }
        }
        #expect(ran)
        #expect(nestedRan == false)
        #expect(nestedCovered == [Int](repeating: 1, count: 100))
    }

    @Test func helpersWakeAfterSleeping() {
        // Pauses longer than the spin time put the helpers to sleep, so these runs go through
        // the semaphore handshake as well as the spinning one.
        for round in 0..<40 {
            if round % 4 == 0 {
                usleep(UInt32(WorkerPool.spinDuration / 1000) * 3)
            }
            #expect(partCounts(3) == [1, 1, 1], "round \(round)")
        }
    }

    @Test func manyShortStepsSumCorrectly() {
        let values = (0..<1000).map { Double($0) }
        for step in 0..<2000 {
            var partial = [Double](repeating: 0, count: 2)
            partial.withUnsafeMutableBufferPointer { partial in
                values.withUnsafeBufferPointer { values in
                    forEachRange(count: values.count, workers: 2) { range in
                        let part = range.lowerBound == 0 ? 0 : 1
                        partial[part] = values[range].reduce(0, +)
                    }
                }
            }
            #expect(partial[0] + partial[1] == 499_500, "step \(step)")
        }
    }

    @Test func concurrentCallersGetCorrectSums() {
        // Four threads compete for the pool: the owner uses helpers, the others use Dispatch.
        let expected = (0..<10_000).reduce(0, +)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<200 {
                let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 3)
                sums.initialize(repeating: 0)
                forEachRange(count: 10_000, workers: 3) { range in
                    // Part p starts at p * 10_000 / 3 (rounded down), so this recovers p.
                    let part = (range.lowerBound * 3 + 9_999) / 10_000
                    sums[part] = range.reduce(0, +)
                }
                if sums.reduce(0, +) != expected {
                    failures.add(1, ordering: .relaxed)
                }
                sums.deallocate()
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}

@Suite struct BufferCacheTests {
    static func address(_ buffer: [Float]) -> UnsafeRawPointer? {
        buffer.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }

    @Test func nextPassReusesBuffers() {
        let cache = BufferCache(maxPools: 1)
        let first = InferenceContext(workers: 1, cache: cache)
        let buffer = first.takeBuffer(count: 1000)
        let address = Self.address(buffer)
        first.recycle(buffer)
        first.finish()
        #expect(cache.floatCount == 1000)

        let second = InferenceContext(workers: 1, cache: cache)
        #expect(cache.floatCount == 0, "the pool moved to the running pass")
        let reused = second.takeBuffer(count: 1000)
        #expect(Self.address(reused) == address)
    }

    @Test func finishDropsSizesThePassDidNotUse() {
        let cache = BufferCache(maxPools: 1)
        let first = InferenceContext(workers: 1, cache: cache)
        first.recycle(first.takeBuffer(count: 10))
        first.recycle(first.takeBuffer(count: 20))
        first.finish()
        #expect(cache.floatCount == 30)

        let second = InferenceContext(workers: 1, cache: cache)
        second.recycle(second.takeBuffer(count: 10))
        second.finish()
        #expect(cache.floatCount == 10)
    }

    @Test func keepsAtMostMaxPools() {
        let cache = BufferCache(maxPools: 2)
        let contexts = (0..<3).map { _ in InferenceContext(workers: 1, cache: cache) }
        for context in contexts {
            context.recycle(context.takeBuffer(count: 5))
            context.finish()
        }
        #expect(cache.floatCount == 10)
        cache.removeAll()
        #expect(cache.floatCount == 0)
    }

    @Test func poolsNotTakenForLongAreFreed() {
        // One large pass, then many small ones: the small ones reuse only the newest pool, so
        // the large pool must not stay forever.
        let cache = BufferCache(maxPools: 2)
        let large = InferenceContext(workers: 1, cache: cache)
        large.recycle(large.takeBuffer(count: 1000))
        let small = InferenceContext(workers: 1, cache: cache)
        small.recycle(small.takeBuffer(count: 1))
        large.finish()
        small.finish()
        #expect(cache.floatCount == 1001)
        for _ in 0..<5 {
            let next = InferenceContext(workers: 1, cache: cache)
            next.recycle(next.takeBuffer(count: 1))
            next.finish()
        }
        #expect(cache.floatCount == 1)
    }

    @Test func poolsBeyondByteLimitAreFreed() {
        let cache = BufferCache(maxPools: 4, maxBytes: 1000 * MemoryLayout<Float>.stride)
        let first = InferenceContext(workers: 1, cache: cache)
        first.recycle(first.takeBuffer(count: 600))
        let second = InferenceContext(workers: 1, cache: cache)
        second.recycle(second.takeBuffer(count: 600))
        let third = InferenceContext(workers: 1, cache: cache)
        third.recycle(third.takeBuffer(count: 2000))
        first.finish()
        second.finish()
        third.finish()
        #expect(cache.floatCount == 600, "the second and the oversized third pool are freed")
    }

    @Test func contextWithoutCacheFreesItsBuffers() {
        let context = InferenceContext(workers: 1)
        context.recycle(context.takeBuffer(count: 8))
        context.releaseBuffers()
        // Nothing is kept, so the next take allocates: its contents are unspecified, but it
        // must have the requested size.
        #expect(context.takeBuffer(count: 8).count == 8)
        context.finish()
    }

    @Test func modelCallsDoNotSeeEarlierCallsBuffers() throws {
        // Buffers go from one call to the next with their old contents. A kernel that read an
        // element before writing it would make A's embedding depend on the call before it.
        let architecture = ThreadingTests.splitArchitecture
        let file = try SyntheticWeights.file(architecture, seed: 29)
        let (_, images) = ThreadingTests.batchInput(architecture)
        for algorithm in ConvolutionAlgorithm.allCases {
            let model = try AuraFaceModel(safeTensors: file, threads: 2, convolution: algorithm)
            let first = try model.rawEmbeddings(normalizedInput: images[0], batchSize: 1)[0]
            #expect(model.cachedBufferBytes > 0, "\(algorithm)")
            _ = try model.rawEmbeddings(normalizedInput: images[1] + images[3] + images[1], batchSize: 3)
            let again = try model.rawEmbeddings(normalizedInput: images[0], batchSize: 1)[0]
            #expect(again == first, "\(algorithm)")

            model.releaseCachedBuffers()
            #expect(model.cachedBufferBytes == 0, "\(algorithm)")
            let afterRelease = try model.rawEmbeddings(normalizedInput: images[0], batchSize: 1)[0]
            #expect(afterRelease == first, "\(algorithm)")
        }
    }
}

@Suite struct SmallKernelBlockTests {
    @Test func blocksFollowTheKernelLimit() throws {
        try OpenBLAS.load()
        let shapes = [(64, 784, 64), (128, 196, 128), (256, 49, 256), (512, 16, 512), (8, 4, 8)]
        for (m, n, k) in shapes {
            let rows = smallKernelRowBlock(m: m, n: n, k: k)
            guard OpenBLAS.hasSmallMatrixKernel else {
                #expect(rows == m, "no small-matrix kernel: one block for \(m)x\(n)x\(k)")
                continue
            }
            #expect(rows >= 1, "\(m)x\(n)x\(k)")
            #expect(rows <= m, "\(m)x\(n)x\(k)")
            #expect(rows * n * k <= OpenBLAS.smallMatrixKernelLimit || rows == m, "\(m)x\(n)x\(k)")
            #expect(rows == m || rows % 16 == 0, "\(m)x\(n)x\(k)")
        }
        if OpenBLAS.hasSmallMatrixKernel {
            #expect(smallKernelRowBlock(m: 64, n: 784, k: 64) == 16)
            #expect(smallKernelRowBlock(m: 128, n: 196, k: 128) == 32)
            #expect(smallKernelRowBlock(m: 256, n: 49, k: 256) == 64)
            #expect(smallKernelRowBlock(m: 512, n: 16, k: 512) == 64)
        }
    }

    @Test func productTooWideForSixteenRowsIsOneBlock() throws {
        try OpenBLAS.load()
        // 16 x 1000 x 1000 exceeds the limit, so splitting would not reach the kernel.
        #expect(smallKernelRowBlock(m: 256, n: 1000, k: 1000) == 256)
        #expect(smallKernelRowBlock(m: 256, n: 0, k: 10) == 256)
    }
}
