// Five-point landmarks for many photos, read from one file in JSON or a line-per-image text
// layout, for aligning a folder or list of photos.

import Foundation

/// Landmarks for many photos, read from a file.
///
/// Four layouts are accepted, distinguished by the content:
///
/// - A JSON object mapping image paths to landmarks:
///   `{"a.jpg": [[x1, y1], ..., [x5, y5]], "b.jpg": [x1, y1, ..., x5, y5]}`.
/// - A JSON array of records: `[{"image": "a.jpg", "landmarks": [...]}, ...]`.
/// - JSON lines, one record per line: `{"image": "a.jpg", "landmarks": [...]}`.
///   A record names its image with `"image"`, `"file"` or `"path"` and its landmarks with
///   `"landmarks"` or `"kps"` (insightface's name), as five `[x, y]` pairs or ten numbers.
/// - Text, one line per image: the path, then x1 y1 ... x5 y5. Fields are separated by
///   commas when the line contains one (so paths may contain spaces) and by whitespace
///   otherwise. Blank lines and lines starting with `#` are skipped, and so is a first line
///   whose second field is not a number (a CSV header).
///
/// Coordinates are photo pixels in detector order (see `FaceLandmarks`). Relative image paths
/// are resolved against the folder that contains the landmarks file.
public struct LandmarksFile: Sendable {
    /// One image and its landmarks.
    public struct Entry: Sendable, Equatable {
        /// The image path as the file writes it.
        public var image: String
        /// The image's location: `image` resolved against the landmarks file's folder.
        public var url: URL
        public var landmarks: FaceLandmarks
        /// The entry's place in the landmarks file.
        public var location: LandmarksFileError.Location
    }

    /// The path of the landmarks file, for messages.
    public let path: String
    /// The entries in file order. For the JSON object layout, whose keys have no order, they
    /// are sorted by image path.
    public let entries: [Entry]
    private let indexByPath: [String: Int]

    /// Reads the landmarks file at `url`.
    ///
    /// - Throws: `LandmarksFileError` naming the file and the line or entry at fault.
    public init(contentsOf url: URL) throws(LandmarksFileError) {
        let bytes: [UInt8]
        do {
            // readFileBytes rejects a FIFO or device at once instead of blocking on it.
            bytes = try readFileBytes(url)
        } catch {
            throw .unreadable(path: url.path, reason: error.reason)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .unreadable(path: url.path, reason: "the file is not UTF-8 text")
        }
        try self.init(text: text, path: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses landmarks from `text`; `path` names the source in errors and `baseDirectory`
    /// resolves relative image paths.
    ///
    /// - Throws: `LandmarksFileError` naming the line or entry at fault.
    public init(text: String, path: String, baseDirectory: URL) throws(LandmarksFileError) {
        self.path = path
        let records = try Self.records(in: text, path: path)
        var entries: [Entry] = []
        var indexByPath: [String: Int] = [:]
        for record in records {
            guard !record.image.isEmpty else {
                throw .missingImage(path: path, location: record.location)
            }
            let url = Self.resolve(record.image, against: baseDirectory)
            if let first = indexByPath[url.path] {
                throw .duplicateImage(
                    path: path, location: record.location, image: record.image,
                    firstLocation: entries[first].location)
            }
            let landmarks = try Self.landmarks(record.values, path: path, location: record.location)
            indexByPath[url.path] = entries.count
            entries.append(
                Entry(image: record.image, url: url, landmarks: landmarks, location: record.location))
        }
        self.entries = entries
        self.indexByPath = indexByPath
    }

    /// Returns the landmarks for the image at `url`, matched by its standardized absolute path,
    /// or nil when the file lists no landmarks for it.
    public func landmarks(for url: URL) -> FaceLandmarks? {
        indexByPath[url.standardizedFileURL.path].map { entries[$0].landmarks }
    }

    /// Resolves a relative path against `directory`, whether or not its URL ends with a slash.
    static func resolve(_ path: String, against directory: URL) -> URL {
        let url = path.hasPrefix("/")
            ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
        return url.standardizedFileURL
    }

    /// A record before its values are checked: ten values are expected.
    private struct Record {
        var image: String
        var values: [Double]
        var location: LandmarksFileError.Location
    }

    private static func landmarks(
        _ values: [Double], path: String, location: LandmarksFileError.Location
    ) throws(LandmarksFileError) -> FaceLandmarks {
        guard values.count == 10 else {
            throw .wrongValueCount(path: path, location: location, found: values.count)
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteValue(path: path, location: location, index: bad, value: values[bad])
        }
        do {
            return try FaceLandmarks(flat: values)
        } catch {
            // Unreachable: ten values always make five points.
            throw .wrongValueCount(path: path, location: location, found: values.count)
        }
    }

    private static func records(in text: String, path: String) throws(LandmarksFileError) -> [Record] {
        let trimmed = text.drop { $0.isWhitespace || $0 == "\u{FEFF}" }
        if trimmed.first == "[" {
            let json = try parseJSON(String(trimmed), path: path, line: nil)
            guard let array = json as? [Any] else {
                throw .invalidJSON(path: path, line: nil, reason: "expected an array of records")
            }
            return try array.enumerated().map { (index, element) throws(LandmarksFileError) in
                try record(element, path: path, location: .element(index))
            }
        }
        if trimmed.first == "{" {
            // A whole-file object maps paths to landmarks. Otherwise each line is one record.
            if let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                !isRecord(object)
            {
                return try object.keys.sorted().map { (key) throws(LandmarksFileError) in
                    Record(
                        image: key,
                        values: try numbers(object[key]!, path: path, location: .key(key)),
                        location: .key(key))
                }
            }
            return try jsonLines(text, path: path)
        }
        return try textLines(text, path: path)
    }

    /// Tells a JSON-lines record from a one-entry path mapping.
    private static func isRecord(_ object: [String: Any]) -> Bool {
        let imageKeys = ["image", "file", "path"]
        let landmarkKeys = ["landmarks", "kps"]
        return object.keys.contains(where: imageKeys.contains)
            && object.keys.contains(where: landmarkKeys.contains)
    }

    private static func jsonLines(_ text: String, path: String) throws(LandmarksFileError) -> [Record] {
        var records: [Record] = []
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let content = line.trimmingCharacters(in: .whitespaces)
            guard !content.isEmpty else { continue }
            let json = try parseJSON(content, path: path, line: index + 1)
            records.append(try record(json, path: path, location: .line(index + 1)))
        }
        return records
    }

    private static func record(
        _ json: Any, path: String, location: LandmarksFileError.Location
    ) throws(LandmarksFileError) -> Record {
        guard let object = json as? [String: Any] else {
            throw .invalidRecord(path: path, location: location, reason: "expected a JSON object")
        }
        guard let image = (object["image"] ?? object["file"] ?? object["path"]) as? String else {
            throw .missingImage(path: path, location: location)
        }
        guard let value = object["landmarks"] ?? object["kps"] else {
            throw .invalidRecord(
                path: path, location: location,
                reason: "no \"landmarks\" or \"kps\" field for '\(image)'")
        }
        return Record(image: image, values: try numbers(value, path: path, location: location), location: location)
    }

    /// Flattens five `[x, y]` pairs or ten numbers into numbers. The count is checked later.
    private static func numbers(
        _ json: Any, path: String, location: LandmarksFileError.Location
    ) throws(LandmarksFileError) -> [Double] {
        guard let array = json as? [Any] else {
            throw .invalidRecord(
                path: path, location: location,
                reason: "expected landmarks as [[x1, y1], ..., [x5, y5]] or [x1, y1, ..., x5, y5]")
        }
        var values: [Double] = []
        for element in array {
            if let pair = element as? [Any] {
                guard pair.count == 2 else {
                    throw .invalidRecord(
                        path: path, location: location,
                        reason: "expected a point [x, y], found \(pair.count) values")
                }
                values += try pair.map { (value) throws(LandmarksFileError) in
                    try number(value, path: path, location: location)
                }
            } else {
                values.append(try number(element, path: path, location: location))
            }
        }
        return values
    }

    private static func number(
        _ json: Any, path: String, location: LandmarksFileError.Location
    ) throws(LandmarksFileError) -> Double {
        // JSONSerialization reads true and false as NSNumber too. Only booleans have the
        // Objective-C type "c" (char), since JSON integers come back as "i" or "q".
        if let number = json as? NSNumber, String(cString: number.objCType) != "c" {
            return number.doubleValue
        }
        throw .invalidNumber(path: path, location: location, text: "\(json)")
    }

    private static func parseJSON(_ text: String, path: String, line: Int?) throws(LandmarksFileError) -> Any {
        do {
            return try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            throw .invalidJSON(path: path, line: line, reason: reason ?? "not valid JSON")
        }
    }

    private static func textLines(_ text: String, path: String) throws(LandmarksFileError) -> [Record] {
        var records: [Record] = []
        var seenContent = false
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let content = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !content.isEmpty, !content.hasPrefix("#") else { continue }
            let location = LandmarksFileError.Location.line(index + 1)
            let fields: [String]
            if content.contains(",") {
                fields = content.split(separator: ",", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
            } else {
                fields = content.split(whereSeparator: \.isWhitespace).map(String.init)
            }
            let isFirst = !seenContent
            seenContent = true
            if isFirst, fields.count > 1, Double(fields[1]) == nil {
                continue
            }
            var values: [Double] = []
            for field in fields.dropFirst() {
                guard let value = Double(field) else {
                    throw .invalidNumber(path: path, location: location, text: field)
                }
                values.append(value)
            }
            records.append(Record(image: fields[0], values: values, location: location))
        }
        return records
    }
}

/// Errors from reading a landmarks file. Each names the file and where in it the fault is.
public enum LandmarksFileError: Error, Equatable, CustomStringConvertible {
    /// A place in a landmarks file.
    public enum Location: Sendable, Equatable, CustomStringConvertible {
        /// A line, from 1, in the JSON-lines and text layouts.
        case line(Int)
        /// An element, from 0, of a JSON array.
        case element(Int)
        /// The key of a JSON object.
        case key(String)

        public var description: String {
            switch self {
            case let .line(line): "line \(line)"
            case let .element(index): "element \(index)"
            case let .key(key): "entry \"\(key)\""
            }
        }
    }

    case unreadable(path: String, reason: String)
    case invalidJSON(path: String, line: Int?, reason: String)
    /// A JSON record of the wrong shape.
    case invalidRecord(path: String, location: Location, reason: String)
    /// A value that is not a number.
    case invalidNumber(path: String, location: Location, text: String)
    /// Not ten landmark values.
    case wrongValueCount(path: String, location: Location, found: Int)
    /// A NaN or infinite landmark value; `index` counts from 0 in x1, y1, ..., x5, y5.
    case nonFiniteValue(path: String, location: Location, index: Int, value: Double)
    /// A second entry for an image path.
    case duplicateImage(path: String, location: Location, image: String, firstLocation: Location)
    /// A record without an image path, or with an empty one.
    case missingImage(path: String, location: Location)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read landmarks file '\(path)': \(reason)"
        case let .invalidJSON(path, line, reason):
            let place = line.map { " line \($0)" } ?? ""
            return "landmarks file '\(path)'\(place) is not valid JSON: \(reason)"
        case let .invalidRecord(path, location, reason):
            return "landmarks file '\(path)' \(location): \(reason)"
        case let .invalidNumber(path, location, text):
            return "landmarks file '\(path)' \(location): '\(text)' is not a number"
        case let .wrongValueCount(path, location, found):
            return "landmarks file '\(path)' \(location): expected 10 numbers x1 y1 ... x5 y5, "
                + "found \(found)"
        case let .nonFiniteValue(path, location, index, value):
            let name = (index % 2 == 0 ? "x" : "y") + "\(index / 2 + 1)"
            return "landmarks file '\(path)' \(location): \(name) is \(value), expected a finite number"
        case let .duplicateImage(path, location, image, firstLocation):
            return "landmarks file '\(path)' \(location): image '\(image)' already has landmarks "
                + "at \(firstLocation)"
        case let .missingImage(path, location):
            return "landmarks file '\(path)' \(location): missing image path, expected a "
                + "\"image\", \"file\" or \"path\" field or a path before the numbers"
        }
    }
}
