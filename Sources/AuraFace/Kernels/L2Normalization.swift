// L2 normalization of an embedding, the step before cosine comparison.

/// Returns v / ||v||_2.
///
/// The sum of squares is accumulated in Double, so vectors whose squares overflow or
/// underflow Float still normalize. Every output element is finite and at most 1 in
/// magnitude.
///
/// - Throws: `InferenceError.nonFiniteVector` if any element is NaN or infinite, and
///   `.zeroVector` if v is empty or all zeros, instead of returning NaN.
func l2Normalize(_ v: [Float]) throws(InferenceError) -> [Float] {
    var sumOfSquares: Double = 0
    var nonFiniteCount = 0
    for x in v {
        if !x.isFinite {
            nonFiniteCount += 1
        }
        sumOfSquares += Double(x) * Double(x)
    }
    guard nonFiniteCount == 0 else {
        throw .nonFiniteVector(count: nonFiniteCount, length: v.count)
    }
    guard sumOfSquares > 0 else {
        throw .zeroVector(length: v.count)
    }
    let norm = sumOfSquares.squareRoot()
    return v.map { Float(Double($0) / norm) }
}
