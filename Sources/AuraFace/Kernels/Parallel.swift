// The engine's own parallelism: a forward pass splits independent pieces of work (GEMMs and
// their row blocks, channel ranges of a transform) over the model's worker budget, while
// OpenBLAS runs single-threaded inside each piece.
//
// Why not OpenBLAS's thread pool: it is process-wide, so two models (or one model called from
// several threads) would share one setting, and its idle threads busy-wait between GEMMs while
// the transforms run on other threads. On a 2-core machine the two sets of threads competed
// for the cores. With OpenBLAS at 2 threads an r100 forward pass took 160 or 310 ms per face
// depending on the process. With other programs busy it used 665 ms of CPU per face against
// 247 ms with 1 thread.

import Dispatch

/// Calls `body` on `0..<count` split into up to `workers` contiguous ranges, on as many
/// threads at once (the caller's thread takes part). With `workers` of 1, or a `count` of 1,
/// it calls `body(0..<count)` on the caller's thread.
///
/// Every caller computes each index the same way whatever range it lands in, so the split
/// changes no result. `body` may write through pointers as long as the calls for disjoint
/// ranges write disjoint memory, which is why the closure may cross threads.
func forEachRange(count: Int, workers: Int, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let parts = max(1, min(workers, count))
    if parts == 1 {
        body(0..<count)
        return
    }
    // The wrapper lets the pointer-capturing closure cross threads, by the statement above.
    struct Work: @unchecked Sendable {
        let body: (Range<Int>) -> Void
    }
    @Sendable func range(_ part: Int) -> Range<Int> {
        (part * count / parts)..<((part + 1) * count / parts)
    }
    if WorkerPool.shared.run(parts: parts, { body(range($0)) }) {
        return
    }
    // The pool is busy with another caller's step, or the step has more parts than the pool
    // has helpers: Dispatch runs it.
    withoutActuallyEscaping(body) { body in
        let work = Work(body: body)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            work.body(range(part))
        }
    }
}

/// Calls `body(index)` for every index in `0..<count`, over up to `workers` threads, as
/// `forEachRange(count:workers:_:)` does.
func forEachIndex(count: Int, workers: Int, _ body: (Int) -> Void) {
    forEachRange(count: count, workers: workers) { range in
        for index in range {
            body(index)
        }
    }
}
