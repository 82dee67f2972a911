// The per-call state of a forward pass: the worker budget and the recycled buffers, and the
// cache that keeps those buffers from one call to the next.

import Foundation

/// The state of one forward pass besides the weights: the number of threads it may run at once
/// and a pool of float buffers that layers take and give back.
///
/// Reusing buffers matters because glibc serves a multi-megabyte array with a fresh mmap (or
/// heap memory it trimmed back to the kernel), whose pages the kernel faults in and zeroes on
/// first touch. In a perf profile of r100 (one load, then 15 single-thread forward passes)
/// page faults and page clearing took about 18% of the CPU samples before the pool and 6%
/// after it. With the pool kept between calls (`BufferCache`), a batch-1 pass that follows
/// another reuses its buffers.
final class InferenceContext {
    /// Threads this pass may use at once (the model's `threadCount`).
    let workers: Int
    /// Free buffers by element count. Layers of one stage ask for the same few sizes.
    private var free: [Int: [[Float]]]
    /// The buffer sizes taken during this pass, so that `finish` keeps only those.
    private var takenSizes: Set<Int> = []
    private let cache: BufferCache?

    /// Creates a context whose buffers start from, and return to, `cache` when one is given.
    init(workers: Int, cache: BufferCache? = nil) {
        precondition(workers >= 1, "InferenceContext: \(workers) workers")
        self.workers = workers
        self.cache = cache
        free = cache?.takePool() ?? [:]
    }

    /// Returns a buffer of `count` floats with unspecified contents (the caller overwrites
    /// every element before reading it), reused from the pool when one of that size is free.
    func takeBuffer(count: Int) -> [Float] {
        takenSizes.insert(count)
        if let buffer = free[count]?.popLast() {
            return buffer
        }
        return uninitializedFloats(count: count)
    }

    /// Gives a buffer back for reuse. The caller must hold no other copy it still reads: the
    /// next `takeBuffer` overwrites it in place. (A copy still held elsewhere, such as one a
    /// layer observer kept, only costs a copy-on-write, never a wrong value.)
    func recycle(_ buffer: consuming [Float]) {
        let count = buffer.count
        free[count, default: []].append(buffer)
    }

    /// Frees the pooled buffers between stages whose sizes differ, so that the pool contains
    /// at most one stage's working set. A context with a cache keeps them for the next call
    /// instead, so its peak is the sum of the stages' working sets.
    func releaseBuffers() {
        if cache == nil {
            free.removeAll()
        }
    }

    /// Ends the pass: gives the buffers of the sizes this pass used to the cache and frees the
    /// rest, so that the cache contains one pass's working set, not every batch size seen.
    func finish() {
        guard let cache else {
            free.removeAll()
            return
        }
        let usedSizes = free.filter { takenSizes.contains($0.key) }
        free.removeAll()
        cache.givePool(usedSizes)
    }
}

/// Activation buffers kept between the forward passes of one model, so that a pass reuses
/// pages that an earlier pass already faulted in.
///
/// It keeps at most `maxPools` pools, one per pass that ran at the same time (the passes of a
/// batch split over threads, or callers on several threads), and at most `maxFloats` floats
/// in all. Each pool contains the buffers of one pass. For the full-width r100,
/// auraface-bench measured 57 MiB kept after batch-1 calls.
final class BufferCache: @unchecked Sendable {
    // An NSLock rather than Synchronization's Mutex: ThreadSanitizer intercepts pthread
    // mutexes, but on Linux it does not recognise Mutex's futex as a lock and reported the
    // accesses as races.
    private let lock = NSLock()
    /// The kept pools, each with the value of `returns` when it came back. Guarded by `lock`.
    private var pools: [(buffers: [Int: [[Float]]], returnedAt: Int)] = []
    /// Pools given back so far. Guarded by `lock`.
    private var returns = 0
    let maxPools: Int
    /// The maximum number of floats in all kept pools together. A pool that would go beyond it
    /// is freed instead of kept.
    let maxFloats: Int

    init(maxPools: Int, maxBytes: Int = BufferCache.defaultMaxBytes) {
        precondition(maxPools >= 0, "BufferCache: \(maxPools) pools")
        precondition(maxBytes >= 0, "BufferCache: \(maxBytes) bytes")
        self.maxPools = maxPools
        maxFloats = maxBytes / MemoryLayout<Float>.stride
    }

    /// 64 MiB: room for the buffers of one batch-1 pass of the full-width r100 (57 MiB).
    /// Larger batches allocate their buffers anew on each call, as all calls did before the
    /// cache. Without the limit, a long run with batch sizes cycling from 1 to 16 on 2 threads
    /// kept up to 3 pools of up to 8 images each, and its resident size rose from about
    /// 520 MiB to 780-845 MiB.
    static let defaultMaxBytes = 64 << 20

    /// Removes and returns the most recently returned pool, or an empty one when none is kept.
    func takePool() -> [Int: [[Float]]] {
        lock.withLock { pools.popLast()?.buffers } ?? [:]
    }

    /// Keeps `pool` for a later pass, unless `maxPools` are kept already. Pools that no pass
    /// took during the last `2 * maxPools` returns are freed: otherwise one large batch would
    /// keep its buffers while later small calls only ever reuse the newest pool.
    func givePool(_ pool: [Int: [[Float]]]) {
        let size = Self.floatCount(of: pool)
        lock.withLock {
            returns += 1
            pools.removeAll { returns - $0.returnedAt > 2 * maxPools }
            let keptFloats = pools.reduce(0) { $0 + Self.floatCount(of: $1.buffers) }
            if pools.count < maxPools && keptFloats + size <= maxFloats {
                pools.append((pool, returns))
            }
        }
    }

    private static func floatCount(of pool: [Int: [[Float]]]) -> Int {
        pool.reduce(0) { $0 + $1.key * $1.value.count }
    }

    /// Frees every kept buffer.
    func removeAll() {
        lock.withLock { pools.removeAll() }
    }

    /// The number of floats in the kept buffers.
    var floatCount: Int {
        lock.withLock {
            pools.reduce(0) { $0 + Self.floatCount(of: $1.buffers) }
        }
    }
}
