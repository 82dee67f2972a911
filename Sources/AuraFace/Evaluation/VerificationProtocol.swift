// The 10-fold face-verification protocol of InsightFace's recognition/arcface_torch/eval/
// verification.py (functions test, evaluate, calculate_roc, calculate_val), the protocol
// behind the LFW, CFP-FP, AgeDB-30, CALFW and CPLFW figures on ArcFace model cards.
// All arithmetic is in Double, as it is in NumPy's float64 there.

/// The accuracy, thresholds, VAL@FAR and ROC of one verification set.
public struct VerificationResult: Sendable, Equatable {
    /// Accuracy on each test fold at the threshold chosen on the other folds.
    public var foldAccuracies: [Double]
    /// The threshold chosen for each fold: a pair is "same" when its distance is below it.
    public var foldThresholds: [Double]
    public var accuracyMean: Double
    /// Population standard deviation of `foldAccuracies` (NumPy's `np.std` default).
    public var accuracyStandardDeviation: Double
    /// VAL (true accept rate) on each test fold at the threshold where the other folds' FAR
    /// reaches `VerificationProtocol.targetFalseAcceptRate`: mean and population standard
    /// deviation over folds.
    public var validationRate: Double
    public var validationRateStandardDeviation: Double
    /// The false accept rate on the test folds at those thresholds, mean over folds.
    public var falseAcceptRate: Double
    /// The ROC: for each of `VerificationProtocol.accuracyThresholds`, the true and false
    /// positive rates on the test folds, averaged over folds.
    public var truePositiveRates: [Double]
    public var falsePositiveRates: [Double]
}

/// Errors from the verification protocol.
public enum VerificationProtocolError: Error, Equatable, CustomStringConvertible {
    /// Distances and labels differ in count, or there are fewer pairs than folds.
    case invalidPairCount(distances: Int, labels: Int, folds: Int)
    /// A fold's training or test pairs are all "same" or all "different", so VAL or FAR
    /// would divide by zero.
    case foldLacksBothClasses(fold: Int, split: String)
    case nonFiniteDistance(index: Int)

    public var description: String {
        switch self {
        case let .invalidPairCount(distances, labels, folds):
            "\(distances) distances and \(labels) labels: expected equal counts of at least "
                + "\(folds) pairs, and at least 2 folds"
        case let .foldLacksBothClasses(fold, split):
            "fold \(fold)'s \(split) pairs are all same or all different; the protocol needs "
                + "both kinds in every fold"
        case let .nonFiniteDistance(index):
            "pair \(index) has a NaN or infinite distance"
        }
    }
}

/// InsightFace's verification protocol on pair distances.
public enum VerificationProtocol {
    /// The thresholds searched for accuracy: 0.00, 0.01, ..., 3.99, computed as `i * 0.01`
    /// as `np.arange(0, 4, 0.01)` computes them.
    public static let accuracyThresholds: [Double] = (0..<400).map { Double($0) * 0.01 }
    /// The thresholds whose training FAR is interpolated for VAL: `np.arange(0, 4, 0.001)`.
    public static let validationThresholds: [Double] = (0..<4000).map { Double($0) * 0.001 }
    public static let targetFalseAcceptRate = 1e-3
    public static let defaultFoldCount = 10

    /// Splits `pairCount` pairs into contiguous folds in file order, as scikit-learn's
    /// `KFold(n_splits, shuffle=False)` does: the first `pairCount % foldCount` folds get one
    /// extra pair.
    public static func foldRanges(pairCount: Int, foldCount: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        for fold in 0..<foldCount {
            let size = pairCount / foldCount + (fold < pairCount % foldCount ? 1 : 0)
            ranges.append(start..<(start + size))
            start += size
        }
        return ranges
    }

    /// Adds each image's raw embedding to its mirror's, L2-normalizes the sum, and returns
    /// the squared Euclidean distance of each pair (images 2i and 2i + 1).
    ///
    /// - Parameters:
    ///   - original: raw embeddings of the images, in file order, an even count.
    ///   - mirrored: raw embeddings of the horizontally mirrored images, in the same order.
    public static func pairDistances(original: [[Float]], mirrored: [[Float]]) -> [Double] {
        precondition(original.count == mirrored.count, "one mirrored embedding per image")
        precondition(original.count % 2 == 0, "two images per pair")
        let combined = zip(original, mirrored).map { first, second in
            normalizedSum(first, second)
        }
        return stride(from: 0, to: combined.count, by: 2).map { index in
            var sum = 0.0
            for (a, b) in zip(combined[index], combined[index + 1]) {
                sum += (a - b) * (a - b)
            }
            return sum
        }
    }

    /// Returns the mean L2 norm of raw embeddings, InsightFace's "XNorm".
    public static func meanNorm(of embeddings: [[Float]]) -> Double {
        guard !embeddings.isEmpty else { return 0 }
        var total = 0.0
        for vector in embeddings {
            total += vector.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        }
        return total / Double(embeddings.count)
    }

    /// Runs the k-fold protocol on pair distances.
    ///
    /// For each fold, the accuracy threshold is the smallest of `accuracyThresholds` with the
    /// best accuracy on the other folds, and the VAL threshold is interpolated from the other
    /// folds' FAR over `validationThresholds`. Both are then scored on the fold.
    ///
    /// - Throws: `VerificationProtocolError` for mismatched counts, fewer pairs than folds,
    ///   a non-finite distance, or a fold without both same and different pairs.
    public static func evaluate(
        distances: [Double], isSame: [Bool], foldCount: Int = defaultFoldCount
    ) throws(VerificationProtocolError) -> VerificationResult {
        guard foldCount >= 2, distances.count == isSame.count, distances.count >= foldCount else {
            throw .invalidPairCount(distances: distances.count, labels: isSame.count, folds: foldCount)
        }
        if let index = distances.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteDistance(index: index)
        }

        var accuracies: [Double] = []
        var thresholds: [Double] = []
        var validationRates: [Double] = []
        var falseAcceptRates: [Double] = []
        var truePositiveSums = [Double](repeating: 0, count: accuracyThresholds.count)
        var falsePositiveSums = [Double](repeating: 0, count: accuracyThresholds.count)

        let folds = foldRanges(pairCount: distances.count, foldCount: foldCount)
        for (fold, testRange) in folds.enumerated() {
            var train = SortedPairs()
            var test = SortedPairs()
            for index in distances.indices {
                if testRange.contains(index) {
                    test.insert(distances[index], isSame: isSame[index])
                } else {
                    train.insert(distances[index], isSame: isSame[index])
                }
            }
            train.sort()
            test.sort()
            guard train.hasBothClasses else { throw .foldLacksBothClasses(fold: fold, split: "training") }
            guard test.hasBothClasses else { throw .foldLacksBothClasses(fold: fold, split: "test") }

            let threshold = bestAccuracyThreshold(train)
            thresholds.append(threshold)
            accuracies.append(Double(test.correctCount(threshold: threshold)) / Double(test.count))

            for (index, candidate) in accuracyThresholds.enumerated() {
                truePositiveSums[index] += test.truePositiveRate(threshold: candidate)
                falsePositiveSums[index] += test.falsePositiveRate(threshold: candidate)
            }

            let validationThreshold = thresholdForTargetFalseAcceptRate(train)
            validationRates.append(test.truePositiveRate(threshold: validationThreshold))
            falseAcceptRates.append(test.falsePositiveRate(threshold: validationThreshold))
        }

        let count = Double(foldCount)
        return VerificationResult(
            foldAccuracies: accuracies,
            foldThresholds: thresholds,
            accuracyMean: mean(accuracies),
            accuracyStandardDeviation: populationStandardDeviation(accuracies),
            validationRate: mean(validationRates),
            validationRateStandardDeviation: populationStandardDeviation(validationRates),
            falseAcceptRate: mean(falseAcceptRates),
            truePositiveRates: truePositiveSums.map { $0 / count },
            falsePositiveRates: falsePositiveSums.map { $0 / count })
    }

    /// Returns the smallest threshold with the most correct training pairs, as `np.argmax`
    /// returns the first maximum.
    static func bestAccuracyThreshold(_ train: SortedPairs) -> Double {
        var bestIndex = 0
        var bestCorrect = -1
        for (index, threshold) in accuracyThresholds.enumerated() {
            let correct = train.correctCount(threshold: threshold)
            if correct > bestCorrect {
                bestCorrect = correct
                bestIndex = index
            }
        }
        return accuracyThresholds[bestIndex]
    }

    /// Interpolates the threshold at which the training FAR reaches the target, as
    /// `scipy.interpolate.interp1d(far, thresholds, kind='slinear')(target)` does, or
    /// returns 0 when no threshold reaches it.
    ///
    /// FAR grows with the threshold, so the FAR values are already sorted, with runs of equal
    /// values. SciPy's degree-1 B-spline then interpolates between the last grid point whose
    /// FAR is at most the target and the next one, but never starts past the second-to-last
    /// point. When those two FAR values are equal its basis weights are 0, so it yields 0.
    /// (SciPy's scipy/interpolate/_bspl.pyx, `find_interval` and `_deBoor_D`.)
    static func thresholdForTargetFalseAcceptRate(_ train: SortedPairs) -> Double {
        let far = validationThresholds.map { train.falsePositiveRate(threshold: $0) }
        let target = targetFalseAcceptRate
        guard let maxFar = far.max(), maxFar >= target else { return 0 }
        var lower = 0
        while lower + 1 < far.count - 1, far[lower + 1] <= target {
            lower += 1
        }
        let upper = lower + 1
        let xa = far[lower]
        let xb = far[upper]
        guard xb != xa else { return 0 }
        // De Boor's recursion for degree 1, in SciPy's order of operations.
        let weight = 1 / (xb - xa)
        let lowerWeight = weight * (xb - target)
        let upperWeight = weight * (target - xa)
        return validationThresholds[lower] * lowerWeight + validationThresholds[upper] * upperWeight
    }

    private static func normalizedSum(_ a: [Float], _ b: [Float]) -> [Double] {
        let sum = zip(a, b).map { Double($0) + Double($1) }
        let norm = sum.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        // sklearn.preprocessing.normalize leaves an all-zero row unchanged.
        guard norm > 0 else { return sum }
        return sum.map { $0 / norm }
    }

    static func mean(_ values: [Double]) -> Double {
        pairwiseSum(values[...]) / Double(values.count)
    }

    /// Computes `np.std(values)`: the square root of the mean squared deviation.
    static func populationStandardDeviation(_ values: [Double]) -> Double {
        let average = mean(values)
        let squares = values.map { ($0 - average) * ($0 - average) }
        return (pairwiseSum(squares[...]) / Double(values.count)).squareRoot()
    }

    /// Sums in NumPy's order (pairwise_sum in numpy/_core/src/umath/loops_utils.h.src), so
    /// means and standard deviations match NumPy's to the last bit and print the same digits.
    /// Below 8 values it adds in sequence. Up to 128 it keeps 8 running sums, strided by 8,
    /// then adds the rest. Above that it splits at half, rounded down to a multiple of 8.
    static func pairwiseSum(_ values: ArraySlice<Double>) -> Double {
        let n = values.count
        let start = values.startIndex
        if n < 8 {
            var sum = 0.0
            for value in values {
                sum += value
            }
            return sum
        }
        if n <= 128 {
            var partial = Array(values[start..<(start + 8)])
            var index = 8
            while index < n - n % 8 {
                for lane in 0..<8 {
                    partial[lane] += values[start + index + lane]
                }
                index += 8
            }
            var sum = ((partial[0] + partial[1]) + (partial[2] + partial[3]))
                + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
            while index < n {
                sum += values[start + index]
                index += 1
            }
            return sum
        }
        var half = n / 2
        half -= half % 8
        return pairwiseSum(values[start..<(start + half)]) + pairwiseSum(values[(start + half)...])
    }
}

/// The distances of a set of pairs split by label and sorted, so the number of pairs below a
/// threshold is a binary search.
struct SortedPairs {
    private(set) var same: [Double] = []
    private(set) var different: [Double] = []

    var count: Int { same.count + different.count }
    var hasBothClasses: Bool { !same.isEmpty && !different.isEmpty }

    mutating func insert(_ distance: Double, isSame: Bool) {
        if isSame {
            same.append(distance)
        } else {
            different.append(distance)
        }
    }

    mutating func sort() {
        same.sort()
        different.sort()
    }

    /// Counts same pairs predicted same plus different pairs predicted different, where a
    /// pair is predicted same when its distance is strictly below `threshold`.
    func correctCount(threshold: Double) -> Int {
        let truePositives = Self.countBelow(threshold, in: same)
        let trueNegatives = different.count - Self.countBelow(threshold, in: different)
        return truePositives + trueNegatives
    }

    func truePositiveRate(threshold: Double) -> Double {
        same.isEmpty ? 0 : Double(Self.countBelow(threshold, in: same)) / Double(same.count)
    }

    func falsePositiveRate(threshold: Double) -> Double {
        different.isEmpty ? 0 : Double(Self.countBelow(threshold, in: different)) / Double(different.count)
    }

    /// Counts the values strictly below `threshold` in ascending `values`.
    static func countBelow(_ threshold: Double, in values: [Double]) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let middle = (low + high) / 2
            if values[middle] < threshold {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }
}
