// The threads behind forEachRange: a few long-lived helper threads that spin briefly between
// jobs before they sleep, so that the hundreds of short parallel steps of one forward pass do
// not each pay for waking a sleeping thread.
//
// Why not DispatchQueue.concurrentPerform alone: at batch 1 an r100 forward pass runs about
// 300 parallel steps, three per Winograd convolution (the input transform, its 16 GEMMs
// together, and the output transform), many of them shorter than 100 microseconds. With concurrentPerform, each step woke a Dispatch
// worker through a futex. In a perf profile of 2-thread batch-1 passes on a 2-core AMD EPYC
// (Zen 4), waking and scheduling threads took about 5% of the CPU samples. The two cores also
// sat idle for about 12% of the wall time: 245 ms of CPU time per face against 2 x 139 ms.

import Dispatch
import Foundation
import Synchronization

/// A process-wide set of helper threads that run the parts of one parallel step while the
/// calling thread runs part 0.
///
/// One caller at a time owns the pool. A caller that finds it busy (another model, or another
/// thread of the same model, in the middle of a step) gets `false` from `run` and falls back to
/// Dispatch, so a caller never waits for another caller's step to finish. Helpers are created on first use,
/// up to `maxHelpers`, and live as long as the process. After a job, a helper spins for
/// `spinDuration` in case another job follows at once, then sleeps on a semaphore.
final class WorkerPool: @unchecked Sendable {
    /// The pool forEachRange uses.
    static let shared = WorkerPool()

    /// The maximum number of helper threads the pool creates. A step with more than
    /// `maxHelpers + 1` parts goes to Dispatch.
    static let maxHelpers = 63
    /// How long a helper, or a caller waiting for its helpers, spins before it sleeps. It is long
    /// enough to bridge the serial code between two parallel steps of a forward pass. After a
    /// call, each helper spins this long once and then sleeps.
    static let spinDuration: UInt64 = 200_000  // nanoseconds

    /// Set while a caller owns the pool.
    private let busy = Atomic<Bool>(false)
    /// Helpers created so far. Read and grown only by the caller that owns the pool.
    private var helpers: [Helper] = []

    /// Runs `body(part)` for every part in `0..<parts`: part 0 on the calling thread, the others
    /// on helpers, and returns when all have finished. Returns false without running anything
    /// when the pool is busy or `parts - 1` exceeds `maxHelpers`.
    func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        precondition(parts >= 1, "WorkerPool: \(parts) parts")
        guard parts - 1 <= Self.maxHelpers else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        while helpers.count < parts - 1 {
            helpers.append(Helper())
        }
        withoutActuallyEscaping(body) { body in
            // Helpers reach `body` through an unretained reference to a box that this frame
            // keeps alive, so no other thread retains or releases the closure context. (With
            // helpers holding copies of the closure, release builds trapped with "closure
            // argument was escaped in withoutActuallyEscaping block" or crashed in the
            // context's reference count.)
            let step = Step(body: body)
            let reference = Unmanaged.passUnretained(step)
            for part in 1..<parts {
                helpers[part - 1].start(reference, part: part)
            }
            body(0)
            for part in 1..<parts {
                helpers[part - 1].waitUntilFinished()
            }
            withExtendedLifetime(step) {}
        }
        return true
    }
}

/// The body of one parallel step, boxed so that helpers can call it through an unretained
/// reference.
private final class Step {
    let body: (Int) -> Void

    init(body: @escaping (Int) -> Void) {
        self.body = body
    }
}

/// A helper thread and the two events it shares with the pool's owner: "job posted" and
/// "job finished".
private final class Helper: @unchecked Sendable {
    private let posted = Event()
    private let finished = Event()
    /// Written by the owner before it posts, read by the helper after it reads the post. The
    /// events order every access.
    private var step: Unmanaged<Step>?
    private var part = 0
    private var generation = 0

    init() {
        let thread = Thread { [self] in
            self.serve()
        }
        thread.name = "AuraFace worker"
        thread.start()
    }

    /// Hands part `part` of `step` to the helper thread. The caller keeps `step` alive until
    /// `waitUntilFinished` returns.
    func start(_ step: Unmanaged<Step>, part: Int) {
        self.step = step
        self.part = part
        generation &+= 1
        posted.post(generation)
    }

    /// Waits until the helper has finished the last part it was given.
    func waitUntilFinished() {
        finished.wait(for: generation)
    }

    private func serve() {
        var seen = 0
        while true {
            seen &+= 1
            posted.wait(for: seen)
            let part = self.part
            step!._withUnsafeGuaranteedRef { $0.body(part) }
            finished.post(seen)
        }
    }
}

/// A counter that one thread advances and one other thread waits on: the waiter spins for
/// `WorkerPool.spinDuration`, then sleeps on a semaphore that the poster signals only when it
/// finds the waiter asleep.
///
/// Why the flag handshake is safe: the waiter stores `sleeping = true` and then reads `value`,
/// and the poster stores `value` and then exchanges `sleeping` for false, all sequentially
/// consistent. So either the waiter reads the new value, or the poster finds the waiter asleep.
/// The side that resets the flag decides whether a signal is owed, so every signal is consumed
/// once.
private final class Event: @unchecked Sendable {
    private let value = Atomic<Int>(0)
    private let sleeping = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func post(_ generation: Int) {
        value.store(generation, ordering: .sequentiallyConsistent)
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            semaphore.signal()
        }
    }

    func wait(for generation: Int) {
        if spin(until: generation) {
            return
        }
        sleeping.store(true, ordering: .sequentiallyConsistent)
        if value.load(ordering: .sequentiallyConsistent) == generation {
            // Posted meanwhile. If the poster already reset the flag, its signal is on the way
            // and must be taken, or the next wait would return early.
            if !sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                semaphore.wait()
            }
            return
        }
        semaphore.wait()
    }

    /// Spins until `value` reaches `generation` or the spin time runs out, and returns whether
    /// it was reached. After the first `hotSpinDuration` the loop yields the CPU at each clock
    /// read, so that with more threads than CPUs the thread it waits for can run.
    private func spin(until generation: Int) -> Bool {
        var start: UInt64 = 0
        var iterations = 0
        while value.load(ordering: .acquiring) != generation {
            iterations += 1
            // Read the clock only every 256 iterations: one read costs as much as dozens of loads.
            guard iterations & 255 == 0 else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if start == 0 {
                start = now
            } else if now - start >= WorkerPool.spinDuration {
                return false
            } else if now - start >= Self.hotSpinDuration {
                sched_yield()
            }
        }
        return true
    }

    /// How long `spin` polls without yielding, in nanoseconds.
    private static let hotSpinDuration: UInt64 = 20_000
}
