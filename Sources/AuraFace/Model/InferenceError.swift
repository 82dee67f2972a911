/// Errors from running the network on caller-supplied input.
public enum InferenceError: Error, Equatable, CustomStringConvertible {
    /// The batch size is below 1.
    case invalidBatchSize(Int)
    /// The input does not hold batchSize x C x H x W values.
    case inputSizeMismatch(expected: Int, found: Int, batchSize: Int, imageShape: [Int])
    /// The input contains NaN or infinite values.
    case nonFiniteInput(count: Int, firstIndex: Int)
    /// The network produced NaN or infinite values for an image whose input and weights were
    /// all finite: some intermediate value overflowed float32, which finite but extreme weights
    /// or input (such as 3e38 in every pixel) can cause. `image` is the first such image in the
    /// batch, `count` its non-finite values.
    case nonFiniteOutput(image: Int, count: Int)
    /// A vector to L2-normalize is empty or all zeros, so it has no direction.
    case zeroVector(length: Int)
    /// A vector to L2-normalize contains NaN or infinite values.
    case nonFiniteVector(count: Int, length: Int)

    public var description: String {
        switch self {
        case let .invalidBatchSize(size):
            "invalid batch size \(size), expected 1 or more"
        case let .inputSizeMismatch(expected, found, batchSize, imageShape):
            "input has \(found) values, expected \(expected) "
                + "(batch size \(batchSize) x \(imageShape), NCHW float32)"
        case let .nonFiniteInput(count, firstIndex):
            "input holds \(count) NaN or infinite values, the first at index \(firstIndex)"
        case let .nonFiniteOutput(image, count):
            "the embedding of image \(image) holds \(count) NaN or infinite values, expected "
                + "finite values: an intermediate value overflowed float32 (check the input and the weights)"
        case let .zeroVector(length):
            "cannot L2-normalize a zero vector of length \(length)"
        case let .nonFiniteVector(count, length):
            "cannot L2-normalize a vector of length \(length) that holds \(count) NaN or infinite values"
        }
    }
}
