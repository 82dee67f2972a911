// The 10-fold protocol on distances with known results, laid out as lfw.bin is: 6,000 pairs,
// each fold of 600 holding 300 same pairs, then 300 different pairs.

import Foundation
import Testing

@testable import AuraFace

private func lfwLayout(sameDistance: Double, differentDistance: Double) -> (distances: [Double], isSame: [Bool]) {
    var distances: [Double] = []
    var isSame: [Bool] = []
    for _ in 0..<10 {
        for index in 0..<600 {
            let same = index < 300
            isSame.append(same)
            distances.append(same ? sameDistance : differentDistance)
        }
    }
    return (distances, isSame)
}

@Suite struct VerificationProtocolTests {
    @Test func separablePairsScorePerfectly() throws {
        let (distances, isSame) = lfwLayout(sameDistance: 0.6, differentDistance: 1.6)
        let result = try VerificationProtocol.evaluate(distances: distances, isSame: isSame)
        #expect(result.foldAccuracies == [Double](repeating: 1, count: 10))
        #expect(result.accuracyMean == 1)
        #expect(result.accuracyStandardDeviation == 0)
        // The smallest threshold above 0.6 on the 0.01 grid: every one up to 1.60 ties.
        #expect(result.foldThresholds == [Double](repeating: VerificationProtocol.accuracyThresholds[61], count: 10))
        #expect(result.foldThresholds.allSatisfy { String(format: "%.2f", $0) == "0.61" })
        // The training FAR jumps from 0 at 1.600 to 1 at 1.601, so the interpolated VAL
        // threshold is 1.600001: just above every different pair, which are all accepted.
        // InsightFace's calculate_val interpolates the same way.
        #expect(result.validationRate == 1)
        #expect(result.validationRateStandardDeviation == 0)
        #expect(result.falseAcceptRate == 1)
    }

    @Test func oneFarSamePairCostsOnePair() throws {
        var (distances, isSame) = lfwLayout(sameDistance: 0.6, differentDistance: 1.6)
        distances[0] = 1.8
        let result = try VerificationProtocol.evaluate(distances: distances, isSame: isSame)
        #expect(result.foldAccuracies[0] == 599.0 / 600.0)
        #expect(result.foldAccuracies[1...].allSatisfy { $0 == 1 })
        #expect(abs(result.accuracyMean - (1 - 1.0 / 6000)) < 1e-15)
        #expect(abs(result.accuracyStandardDeviation - 0.0005) < 1e-12)
        #expect(result.foldThresholds.allSatisfy { String(format: "%.2f", $0) == "0.61" })
    }

    @Test func foldsMatchUnshuffledKFold() {
        let lfw = VerificationProtocol.foldRanges(pairCount: 6000, foldCount: 10)
        #expect(lfw.first == 0..<600)
        #expect(lfw.last == 5400..<6000)
        // scikit-learn gives the first n % k folds one extra item.
        let uneven = VerificationProtocol.foldRanges(pairCount: 13, foldCount: 10)
        #expect(uneven.map(\.count) == [2, 2, 2, 1, 1, 1, 1, 1, 1, 1])
        #expect(uneven.last == 12..<13)
    }

    @Test func thresholdGridsMatchNumPyArange() {
        #expect(VerificationProtocol.accuracyThresholds.count == 400)
        #expect(VerificationProtocol.validationThresholds.count == 4000)
        // np.arange(0, 4, 0.01)[35] is 35 * 0.01 = 0.35000000000000003, not the literal 0.35.
        #expect(VerificationProtocol.accuracyThresholds[35] == 35 * 0.01)
        #expect(VerificationProtocol.accuracyThresholds[35] != 0.35)
        #expect(VerificationProtocol.validationThresholds[1601] == 1601 * 0.001)
    }

    /// FAR over the grid is 0, then 1/2000 from 1.001, 2/2000 = 1e-3 at 1.003 and 1.004, and
    /// 3/2000 from 1.005. SciPy's slinear interpolation starts from the last grid point with
    /// FAR <= 1e-3, so the threshold is 1.004, not 1.003.
    @Test func valThresholdUsesLastPointAtTarget() {
        var train = SortedPairs()
        for k in 0..<2000 {
            train.insert(k < 10 ? 1.0005 + Double(k) * 0.002 : 3.5, isSame: false)
        }
        train.insert(0.5, isSame: true)
        train.sort()
        let threshold = VerificationProtocol.thresholdForTargetFalseAcceptRate(train)
        #expect(abs(threshold - 1.004) < 1e-12)
    }

    @Test func valThresholdInterpolatesInsideStep() {
        // One different pair at 1.6: FAR jumps from 0 at 1.600 to 1 at 1.601, so the
        // threshold is 1.600 + 0.001 * 1e-3.
        var train = SortedPairs()
        train.insert(1.6, isSame: false)
        train.insert(0.6, isSame: true)
        train.sort()
        let threshold = VerificationProtocol.thresholdForTargetFalseAcceptRate(train)
        #expect(abs(threshold - 1.600001) < 1e-12)
    }

    @Test func valThresholdZeroWhenTargetNeverReached() {
        // Every different pair at 4.0 or above: FAR stays 0 on the whole grid.
        var train = SortedPairs()
        train.insert(4.0, isSame: false)
        train.insert(0.5, isSame: true)
        train.sort()
        #expect(VerificationProtocol.thresholdForTargetFalseAcceptRate(train) == 0)
    }

    @Test func meansSumInNumPyOrder() {
        // np.sum(0.1 * np.arange(1, 11)) is 5.5; a left-to-right sum gives 5.500000000000001.
        let values = (1...10).map { Double($0) * 0.1 }
        #expect(VerificationProtocol.pairwiseSum(values[...]) == 5.5)
        #expect(values.reduce(0, +) != 5.5)
        #expect(VerificationProtocol.populationStandardDeviation(values) == 0.2872281323269014)
    }

    @Test func mirrorEmbeddingAddedBeforeNormalization() {
        // (3, 0) + (0, 4) normalizes to (0.6, 0.8); the partner is (1, 0).
        let distances = VerificationProtocol.pairDistances(
            original: [[3, 0], [1, 0]], mirrored: [[0, 4], [2, 0]])
        #expect(distances.count == 1)
        #expect(abs(distances[0] - 0.8) < 1e-12)
    }

    @Test func meanNormCoversEveryEmbedding() {
        #expect(VerificationProtocol.meanNorm(of: [[3, 4], [0, 1]]) == 3)
    }

    @Test func mismatchedCountsRejected() {
        #expect(throws: VerificationProtocolError.invalidPairCount(distances: 20, labels: 19, folds: 10)) {
            try VerificationProtocol.evaluate(
                distances: [Double](repeating: 1, count: 20), isSame: [Bool](repeating: true, count: 19))
        }
    }

    @Test func foldWithOneClassRejected() {
        // Fold 0 (pairs 0 and 1) holds only same pairs.
        let isSame = (0..<20).map { $0 < 2 || $0 % 2 == 0 }
        #expect(throws: VerificationProtocolError.foldLacksBothClasses(fold: 0, split: "test")) {
            try VerificationProtocol.evaluate(distances: [Double](repeating: 1, count: 20), isSame: isSame)
        }
    }

    @Test func nonFiniteDistanceRejected() {
        var distances = [Double](repeating: 1, count: 20)
        distances[7] = .nan
        #expect(throws: VerificationProtocolError.nonFiniteDistance(index: 7)) {
            try VerificationProtocol.evaluate(distances: distances, isSame: (0..<20).map { $0 % 2 == 0 })
        }
    }
}
