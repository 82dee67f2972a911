/// An aligned face crop and the fit that produced it.
public struct AlignedFace: Sendable {
    /// The crop, `cropSize` x `cropSize` RGB.
    public var image: RGBImage
    /// The similarity transform from photo coordinates to crop coordinates.
    public var transform: AffineMatrix
    /// The root-mean-square distance, in crop pixels, between the mapped landmarks and the
    /// template points. Well-detected frontal faces fit to a few pixels.
    public var rmsResidual: Double
}

/// Aligns faces in photos onto the ArcFace template, as insightface's `norm_crop` does: a
/// least-squares similarity transform from the five landmarks onto the template, then an
/// OpenCV-compatible bilinear warp with a black border.
///
/// ```swift
/// let aligner = FaceAligner()
/// let face = try aligner.align(PixelBuffer(photo), landmarks: landmarks)
/// let embedding = try model.embeddings(faces: [face.image])[0]
/// ```
public struct FaceAligner: Sendable {
    /// The default `maxRMSResidual`, in 112x112 template pixels: 10.
    ///
    /// Measured with scikit-image's fit (the same fit as here) onto the 112x112 template:
    /// the synthetic faces of Tools/make_alignment_fixtures.py (up to 2 pixels of landmark
    /// noise) fit within 1 pixel RMS and the hand-marked astronaut fixture at 2.2. insightface's
    /// own landmark templates for turned heads (`src1` to `src5` in face_align.py) fit at 8.3
    /// for half-profile and 14.0 for full profile. The limit accepts half-profile faces and
    /// rejects full profiles, landmarks with the eyes and mouth corners swapped (22.6), and 99%
    /// of sets of five uniformly random points in a 300x300 square (1st percentile 11.2).
    public static let defaultMaxRMSResidual = 10.0
    /// The largest absolute landmark coordinate accepted, in pixels.
    public static let maxLandmarkCoordinate = 1e7

    /// The side of the square crop in pixels: a multiple of 112 or 128.
    public let cropSize: Int
    /// The largest accepted RMS fit residual, in pixels of a 112x112 crop (scaled with the crop).
    public let maxRMSResidual: Double
    /// The template scaled to `cropSize`.
    public let template: [Point2D]

    /// Creates an aligner for `cropSize` x `cropSize` crops.
    ///
    /// - Throws: `AlignmentError.unsupportedCropSize` unless `cropSize` is a positive multiple
    ///   of 112 or 128.
    public init(
        cropSize: Int = 112, maxRMSResidual: Double = defaultMaxRMSResidual
    ) throws(AlignmentError) {
        self.cropSize = cropSize
        self.maxRMSResidual = maxRMSResidual
        template = try ArcFaceTemplate.points(cropSize: cropSize)
    }

    /// Creates an aligner for 112x112 crops, the input size of ArcFace models.
    public init() {
        cropSize = 112
        maxRMSResidual = Self.defaultMaxRMSResidual
        template = ArcFaceTemplate.points112
    }

    /// Returns the similarity transform from photo coordinates onto the template, with its
    /// residual, after checking that the landmarks describe a plausible face.
    ///
    /// - Throws: `AlignmentError.nonFiniteLandmark`, `.degenerateLandmarks` (all points equal),
    ///   `.mirroredLandmarks` (the landmarks are a mirror image of a face, such as the two eyes
    ///   swapped), or `.residualTooLarge` when the fit misses the template by more than
    ///   `maxRMSResidual`.
    public func fit(_ landmarks: FaceLandmarks) throws(AlignmentError) -> SimilarityFit {
        for (index, point) in landmarks.points.enumerated()
        where !point.x.isFinite || !point.y.isFinite {
            throw .nonFiniteLandmark(index: index, point: point)
        }
        // Far larger than any decodable photo; beyond it the fit's sums of squares overflow.
        for (index, point) in landmarks.points.enumerated()
        where abs(point.x) > Self.maxLandmarkCoordinate || abs(point.y) > Self.maxLandmarkCoordinate {
            throw .landmarkOutOfRange(index: index, point: point, limit: Self.maxLandmarkCoordinate)
        }
        guard let fit = SimilarityFit.fit(from: landmarks.points, to: template) else {
            throw .degenerateLandmarks(landmarks.points[0])
        }
        let scale = Double(cropSize) / 112
        let residual112 = fit.rmsResidual / scale
        if fit.sourceIsMirrored {
            throw .mirroredLandmarks(rmsResidual: residual112)
        }
        guard residual112 <= maxRMSResidual else {
            throw .residualTooLarge(rmsResidual: residual112, limit: maxRMSResidual)
        }
        return fit
    }

    /// Aligns one face: fits the landmarks and warps the photo into a crop.
    ///
    /// - Throws: `AlignmentError` as `fit(_:)` does.
    public func align(_ photo: PixelBuffer, landmarks: FaceLandmarks) throws(AlignmentError) -> AlignedFace {
        let fit = try fit(landmarks)
        let image = AffineWarp.warp(photo, transform: fit.transform, width: cropSize, height: cropSize)
        return AlignedFace(image: image, transform: fit.transform, rmsResidual: fit.rmsResidual)
    }
}

/// Errors from checking landmarks and aligning faces.
public enum AlignmentError: Error, Equatable, CustomStringConvertible {
    /// Not five landmarks.
    case wrongLandmarkCount(found: Int)
    /// A crop size the template has no scaling rule for.
    case unsupportedCropSize(Int)
    /// A landmark coordinate is NaN or infinite.
    case nonFiniteLandmark(index: Int, point: Point2D)
    /// A landmark coordinate's absolute value exceeds `limit` pixels.
    case landmarkOutOfRange(index: Int, point: Point2D, limit: Double)
    /// All five landmarks are the same point, so no transform fits.
    case degenerateLandmarks(Point2D)
    /// The landmarks are a mirror image of the template layout.
    case mirroredLandmarks(rmsResidual: Double)
    /// The best similarity fit misses the template by more than the limit.
    case residualTooLarge(rmsResidual: Double, limit: Double)

    public var description: String {
        switch self {
        case let .wrongLandmarkCount(found):
            "expected 5 landmarks (x1,y1,...,x5,y5), found \(found)"
        case let .unsupportedCropSize(size):
            "crop size \(size) is not supported, expected a positive multiple of 112 or 128"
        case let .nonFiniteLandmark(index, point):
            "landmark \(index + 1) is \(point), expected finite coordinates"
        case let .landmarkOutOfRange(index, point, limit):
            "landmark \(index + 1) is \(point), expected coordinates within +-\(formatted(limit)) pixels"
        case let .degenerateLandmarks(point):
            "all 5 landmarks are the same point \(point), expected two eyes, a nose tip and two "
                + "mouth corners at distinct positions"
        case let .mirroredLandmarks(residual):
            "the landmarks are a mirror image of a face (RMS residual "
                + "\(formatted(residual)) template pixels); expected the order eye on the image's "
                + "left, eye on the image's right, nose tip, mouth corner left, mouth corner right"
        case let .residualTooLarge(residual, limit):
            "the landmarks fit the ArcFace template with an RMS residual of "
                + "\(formatted(residual)) pixels, above the limit of \(formatted(limit)); check "
                + "that they are in detector order and belong to one face"
        }
    }

    private func formatted(_ value: Double) -> String {
        let scaled = (value * 100).rounded() / 100
        return "\(scaled)"
    }
}
