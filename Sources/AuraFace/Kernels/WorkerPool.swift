// The threads behind forEachRange: a few long-lived helper threads that spin briefly between
// jobs before they sleep, so that the hundreds of short parallel steps of one forward pass do
// not each pay for waking a sleeping thread.
//
// Why not DispatchQueue.concurrentPerform alone: at batch 1 an r100 forward pass runs about
// 300 parallel steps (an input transform, 16 GEMMs and an output transform per convolution),
// many of them shorter than 100 microseconds. With concurrentPerform, each step woke a Dispatch
// worker through a futex. In a perf profile of 2-thread batch-1 passes on a 2-core AMD EPYC
// (Zen 4), waking and scheduling threads took about 5% of the CPU samples, and the two cores
// sat idle for about 12% of the wall time (CPU time 245 ms per face against 2 x 139 ms of wall
// time).

import Dispatch
import Foundation
import Synchronization

/// A process-wide set of helper threads that run the parts of one parallel step while the
/// calling thread runs part 0.
///
/// One caller at a time owns the pool. A caller that finds it busy (another model, or another
/// thread of the same model, in the middle of a step) gets `false` from `run` and falls back to
/// Dispatch, so concurrent callers never wait for each other. Helpers are created on first use,
/// up to `maxHelpers`, and live as long as the process. After a job, a helper spins for
/// `spinDuration` in case another job follows at once, then sleeps on a semaphore.
final class WorkerPool: @unchecked Sendable {
    /// The pool forEachRange uses.
    static let shared = WorkerPool()

    /// The maximum number of helper threads the pool creates. A step with more parts goes to
    /// Dispatch.
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
            for part in 1..<parts {
                helpers[part - 1].start(Job(body: body, part: part))
            }
            body(0)
            // Every helper drops its reference to `body` before it reports, as
            // withoutActuallyEscaping requires.
            for part in 1..<parts {
                helpers[part - 1].waitUntilFinished()
            }
        }
        return true
    }
}

/// One part of a parallel step, handed to a helper.
private struct Job {
    let body: (Int) -> Void
    let part: Int
}

/// A helper thread and the two events it shares with the pool's owner: "job posted" and
/// "job finished".
private final class Helper: @unchecked Sendable {
    private let posted = Event()
    private let finished = Event()
    /// Written by the owner before it posts, read by the helper after it reads the post, and
    /// cleared by the helper before it reports. The events order every access.
    private var job: Job?
    private var generation = 0

    init() {
        let thread = Thread { [self] in
            self.serve()
        }
        thread.name = "AuraFace worker"
        thread.start()
    }

    /// Hands `job` to the helper thread.
    func start(_ job: Job) {
        self.job = job
        generation &+= 1
        posted.post(generation)
    }

    /// Waits until the helper has finished the last job it was given.
    func waitUntilFinished() {
        finished.wait(for: generation)
    }

    private func serve() {
        var seen = 0
        while true {
            seen &+= 1
            posted.wait(for: seen)
            runJob()
            finished.post(seen)
        }
    }

    /// Runs the posted job. Its references to the closure end when this returns, before the
    /// owner learns that the part finished, as withoutActuallyEscaping requires.
    private func runJob() {
        let job = self.job!
        self.job = nil
        job.body(job.part)
    }
}

/// A counter that one thread advances and one other thread waits on: the waiter spins for
/// `WorkerPool.spinDuration`, then sleeps on a semaphore that the poster signals only when it
/// finds the waiter asleep.
///
/// Why the flag handshake is safe: the waiter stores `sleeping = true` and then reads `value`,
/// and the poster stores `value` and then exchanges `sleeping` for false, all sequentially
/// consistent. So either the waiter reads the new value, or the poster finds the waiter asleep.
/// Whoever resets the flag decides whether a signal is owed, so every signal is consumed once.
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
    /// it was reached.
    private func spin(until generation: Int) -> Bool {
        var deadline: UInt64 = 0
        var iterations = 0
        while value.load(ordering: .acquiring) != generation {
            iterations += 1
            // Read the clock only every 256 iterations: one read costs as much as dozens of loads.
            guard iterations & 255 == 0 else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if deadline == 0 {
                deadline = now + WorkerPool.spinDuration
            } else if now >= deadline {
                return false
            }
        }
        return true
    }
}
