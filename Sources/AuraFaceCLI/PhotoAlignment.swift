// Photos with five landmarks for `embed` and `compare`: landmark parsing, alignment onto the
// ArcFace template, and saving the aligned crops.

import AuraFace
import Foundation

enum PhotoAlignment {
    static let landmarksHelp =
        "Five landmarks x1,y1,...,x5,y5 in photo pixels, in detector order: eye on the image's "
        + "left, eye on the image's right, nose tip, mouth corner left, mouth corner right."

    /// Parses ten comma-separated numbers.
    static func landmarks(_ text: String, option: String) throws(UsageError) -> FaceLandmarks {
        let fields = text.split(separator: ",", omittingEmptySubsequences: false)
        let values = fields.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard fields.count == 10, values.count == 10 else {
            throw UsageError(
                "--\(option) expects 10 comma-separated numbers x1,y1,...,x5,y5, found '\(text)'")
        }
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw UsageError(
                "--\(option) value \(index + 1) is '\(fields[index].trimmingCharacters(in: .whitespaces))', "
                    + "expected a finite number of photo pixels")
        }
        do {
            return try FaceLandmarks(flat: values)
        } catch {
            throw UsageError("--\(option): \(error.description)")
        }
    }

    /// Reads a photo (PNG, JPEG, PPM or PGM), aligns the face at `landmarks` to the model's
    /// input size, and writes the crop as PNG into `saveDirectory` when one is given.
    static func alignedFace(
        photoPath: String, landmarks: FaceLandmarks, inputSize: Int, saveDirectory: String?
    ) throws -> AlignedFace {
        let url = URL(fileURLWithPath: photoPath)
        let photo = try PhotoFile.read(contentsOf: url)
        let face: AlignedFace
        do {
            face = try FaceAligner(cropSize: inputSize).align(PixelBuffer(photo), landmarks: landmarks)
        } catch {
            throw CommandFailure("'\(url.path)': \(error.description)")
        }
        if let saveDirectory {
            let directory = URL(fileURLWithPath: saveDirectory)
            try OutputPath.prepareFolder(directory, option: "--save-aligned")
            let name = url.deletingPathExtension().lastPathComponent + "_aligned.png"
            try PNGImage.write(face.image, to: directory.appendingPathComponent(name))
        }
        return face
    }

    /// Formats the JSON fields that describe an alignment: the 2x3 matrix and the fit residual.
    static func jsonFields(_ face: AlignedFace) -> String {
        let m = face.transform.matrix.map { JSONText.number($0) }
        return "\"matrix\":[[\(m[0]),\(m[1]),\(m[2])],[\(m[3]),\(m[4]),\(m[5])]],"
            + "\"rms_residual\":\(JSONText.number(face.rmsResidual))"
    }
}

extension EmbedCommand {
    static let photoOptions: [OptionSpec] = [
        .value("landmarks", "X1,Y1,...,X5,Y5", PhotoAlignment.landmarksHelp + " IMAGE is then a photo of any size."),
        .value("save-aligned", "DIR", "With --landmarks or --landmarks-file: also write each aligned crop to DIR/NAME_aligned.png."),
    ]

    /// `embed --landmarks`: one photo, aligned and embedded, printed as one JSON line with the
    /// alignment matrix and residual added.
    static func embedPhoto(
        _ arguments: ParsedArguments, landmarksText: String, modelURL: URL, threads: Int?,
        console: Console
    ) throws {
        guard arguments.value("tensor") == nil else {
            throw UsageError("--landmarks cannot be combined with --tensor")
        }
        guard arguments.positionals.count == 1 else {
            throw UsageError(
                "--landmarks applies to exactly one photo, found \(arguments.positionals.count) images")
        }
        let landmarks = try PhotoAlignment.landmarks(landmarksText, option: "landmarks")
        let verbose = arguments.flag("verbose")
        if let saveDirectory = arguments.value("save-aligned") {
            try OutputPath.rejectStandardOutput(saveDirectory, option: "--save-aligned")
            try OutputPath.prepareFolder(URL(fileURLWithPath: saveDirectory), option: "--save-aligned")
        }
        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        let path = arguments.positionals[0]
        let face = try PhotoAlignment.alignedFace(
            photoPath: path, landmarks: landmarks, inputSize: model.architecture.inputSize,
            saveDirectory: arguments.value("save-aligned"))
        let raw = try model.rawEmbeddings(
            normalizedInput: RGBImage.normalizedBatch([face.image], metadata: model.metadata),
            batchSize: 1)[0]
        try console.print(
            "{\"file\":\(JSONText.string(path)),"
                + "\"embedding\":\(JSONText.array(try AuraFaceModel.l2Normalized(raw))),"
                + "\"norm\":\(JSONText.number(l2Norm(raw))),"
                + PhotoAlignment.jsonFields(face) + "}")
    }
}

extension CompareCommand {
    static let photoOptions: [OptionSpec] = [
        .value("landmarks-a", "X1,Y1,...,X5,Y5", "Landmarks of the face in A, which is then a photo. " + PhotoAlignment.landmarksHelp),
        .value("landmarks-b", "X1,Y1,...,X5,Y5", "Landmarks of the face in B, which is then a photo."),
        .value("save-aligned", "DIR", "Write the crops aligned from photos to DIR/NAME_aligned.png."),
    ]

    /// Loads A and B: a photo aligned with its landmarks where --landmarks-a or --landmarks-b is
    /// given, otherwise an aligned crop at the model's input size.
    static func loadFaces(
        _ paths: [String], arguments: ParsedArguments, inputSize: Int
    ) throws -> [RGBImage] {
        var images: [RGBImage] = []
        for (path, option) in zip(paths, ["landmarks-a", "landmarks-b"]) {
            if let text = arguments.value(option) {
                let landmarks = try PhotoAlignment.landmarks(text, option: option)
                let face = try PhotoAlignment.alignedFace(
                    photoPath: path, landmarks: landmarks, inputSize: inputSize,
                    saveDirectory: arguments.value("save-aligned"))
                images.append(face.image)
            } else {
                images += try loadFaceImages([path], inputSize: inputSize)
            }
        }
        return images
    }
}
