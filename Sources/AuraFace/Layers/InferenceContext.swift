// The per-call state of a forward pass: the worker budget and the recycled buffers.

/// The state of one forward pass besides the weights: the number of threads it may run at once
/// and a pool of float buffers that layers take and give back.
///
/// Each call to the model makes its own context, so calls from several threads share nothing
/// but the immutable weights. Reusing buffers matters because glibc serves a multi-megabyte
/// array with a fresh mmap, whose pages the kernel faults in and zeroes on first touch. In a
/// perf profile of r100 (one load, then 15 single-thread forward passes) page faults and page
/// clearing took about 18% of the CPU samples before the pool and 6% after it.
final class InferenceContext {
    /// Threads this pass may use at once (the model's `threadCount`).
    let workers: Int
    /// Free buffers by element count. Layers of one stage ask for the same few sizes.
    private var free: [Int: [[Float]]] = [:]

    init(workers: Int) {
        precondition(workers >= 1, "InferenceContext: \(workers) workers")
        self.workers = workers
    }

    /// Returns a buffer of `count` floats with unspecified contents (the caller overwrites
    /// every element before reading it), reused from the pool when one of that size is free.
    func takeBuffer(count: Int) -> [Float] {
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

    /// Frees the pooled buffers, between stages whose sizes differ, so that the pool holds at
    /// most one stage's working set.
    func releaseBuffers() {
        free.removeAll()
    }
}
