// NumPy's .npy format (numpy/lib/format.py, format versions 1.0, 2.0 and 3.0): the magic
// string "\x93NUMPY", a major and a minor version byte, the header length (uint16
// little-endian in 1.0, uint32 in 2.0 and 3.0), then the header: a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and ended by
// '\n', ASCII in 1.0 and 2.0, UTF-8 in 3.0. The raw array data follows the header.

import Foundation

/// A float32 array as stored in a NumPy .npy file: its shape and its elements in C
/// (row-major) order.
///
/// Only little-endian float32 (`'<f4'`) in C order is read or written, the layout
/// `np.save(path, x.astype('<f4'))` produces for a contiguous array.
public struct NpyArray: Sendable, Equatable {
    /// The dimensions; empty for a 0-d (scalar) array.
    public let shape: [Int]
    /// The `shape.reduce(1, *)` elements in C order.
    public let values: [Float]

    /// The maximum header length accepted when reading. NumPy's own reader stops at 10,000
    /// bytes by default (`max_header_size` in numpy/lib/format.py), and this allows more for
    /// high ranks.
    public static let maxHeaderBytes = 65_536

    /// Wraps `values` with `shape`.
    ///
    /// - Throws: `NpyError.valueCountMismatch` when the product of `shape` (1 for `[]`) is not
    ///   `values.count` or a dimension is negative.
    public init(shape: [Int], values: [Float]) throws(NpyError) {
        guard shape.allSatisfy({ $0 >= 0 }), Self.elementCount(shape) == values.count else {
            throw .valueCountMismatch(shape: shape, count: values.count)
        }
        self.shape = shape
        self.values = values
    }

    /// Reads a .npy file.
    ///
    /// - Throws: `NpyError` naming the file: `.fileNotFound`, `.unreadable`, `.notNpy`,
    ///   `.unsupportedVersion`, `.malformedHeader`, `.unsupportedDType` (anything but `'<f4'`,
    ///   including big-endian `'>f4'`), `.fortranOrder`, `.dataSizeMismatch`.
    public init(contentsOf url: URL) throws(NpyError) {
        let bytes: [UInt8]
        do {
            bytes = try readFileBytes(url)
        } catch {
            switch error {
            case .notFound: throw .fileNotFound(path: url.path)
            case let .failed(reason): throw .unreadable(path: url.path, reason: reason)
            }
        }
        try self.init(bytes: bytes, path: url.path)
    }

    /// Parses .npy bytes held in memory. `path` names the source in error messages.
    ///
    /// - Throws: `NpyError` as for `init(contentsOf:)`.
    public init(bytes: [UInt8], path: String) throws(NpyError) {
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 8, Array(bytes[0..<6]) == magic else {
            let found = bytes.prefix(6).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw .notNpy(path: path, found: found)
        }
        let major = Int(bytes[6])
        let minor = Int(bytes[7])
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0), (3, 0): lengthFieldSize = 4
        default: throw .unsupportedVersion(path: path, major: major, minor: minor)
        }
        let headerStart = 8 + lengthFieldSize
        guard bytes.count >= headerStart else {
            throw .malformedHeader(
                path: path,
                reason: "expected a \(lengthFieldSize)-byte header length, but the file ends after \(bytes.count) bytes")
        }
        var headerLength = 0
        for i in 0..<lengthFieldSize {
            headerLength |= Int(bytes[8 + i]) << (8 * i)
        }
        guard headerLength <= Self.maxHeaderBytes else {
            throw .malformedHeader(
                path: path,
                reason: "header length \(headerLength) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        guard bytes.count - headerStart >= headerLength else {
            throw .malformedHeader(
                path: path,
                reason: "header length is \(headerLength) bytes, but only \(bytes.count - headerStart) bytes follow")
        }
        let headerBytes = bytes[headerStart..<(headerStart + headerLength)]
        // Versions 1.0 and 2.0 store latin-1, and every valid header of those is ASCII.
        guard major == 3 || headerBytes.allSatisfy({ $0 < 0x80 }) else {
            throw .malformedHeader(path: path, reason: "header of a version \(major).0 file is not ASCII")
        }
        guard let headerText = String(validating: headerBytes, as: UTF8.self) else {
            throw .malformedHeader(path: path, reason: "header is not valid UTF-8")
        }
        let shape = try Self.parseHeader(headerText, path: path)

        let dataStart = headerStart + headerLength
        let elementCount = Self.elementCount(shape)
        let expectedBytes = elementCount.multipliedReportingOverflow(by: 4)
        let foundBytes = bytes.count - dataStart
        guard elementCount >= 0, !expectedBytes.overflow, expectedBytes.partialValue == foundBytes else {
            throw .dataSizeMismatch(
                path: path, shape: shape,
                expectedBytes: elementCount < 0 || expectedBytes.overflow ? -1 : expectedBytes.partialValue,
                foundBytes: foundBytes)
        }
        // .npy stores '<f4' little-endian, as is every platform this library builds on.
        let values = [Float](unsafeUninitializedCapacity: elementCount) { buffer, count in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: raw[dataStart..<bytes.count]))
            }
            count = elementCount
        }
        self.shape = shape
        self.values = values
    }

    /// Serializes the array with a format 1.0 header padded with spaces so the data starts at a
    /// multiple of 64 bytes, as NumPy writes it. A header that would exceed 65,535 bytes gets
    /// format 2.0 instead.
    public func serialized() -> [UInt8] {
        let dimensions = shape.map(String.init)
        let shapeText =
            switch dimensions.count {
            case 0: "()"
            case 1: "(\(dimensions[0]),)"
            default: "(" + dimensions.joined(separator: ", ") + ")"
            }
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        var lengthFieldSize = 2
        var version: UInt8 = 1
        if header.count + 1 + 10 > 65_535 {
            lengthFieldSize = 4
            version = 2
        }
        let prefixSize = 8 + lengthFieldSize
        let padding = (64 - (prefixSize + header.count + 1) % 64) % 64
        header += [UInt8](repeating: 0x20, count: padding) + [0x0A]

        var output: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        output.reserveCapacity(prefixSize + header.count + values.count * 4)
        for i in 0..<lengthFieldSize {
            output.append(UInt8(truncatingIfNeeded: header.count >> (8 * i)))
        }
        output += header
        values.withUnsafeBytes { output.append(contentsOf: $0) }
        return output
    }

    /// Writes the array atomically: to a temporary file in the same folder, then renamed over
    /// `url`, so a failure never leaves a partial file at `url`.
    ///
    /// - Throws: `NpyError.unwritable` naming `url`.
    public func write(to url: URL) throws(NpyError) {
        do {
            try writeFileAtomically(serialized(), to: url)
        } catch let .unwritable(_, reason) {
            throw .unwritable(path: url.path, reason: reason)
        } catch {
            throw .unwritable(path: url.path, reason: error.description)
        }
    }

    /// Returns the product of `shape`, or -1 when it overflows.
    private static func elementCount(_ shape: [Int]) -> Int {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return -1 }
            count = product
        }
        return count
    }

    /// Checks the header dict and returns the shape.
    private static func parseHeader(_ text: String, path: String) throws(NpyError) -> [Int] {
        var parser = PythonLiteralParser(text: text)
        let value: PythonLiteral
        do {
            value = try parser.parseValue()
            try parser.expectEnd()
        } catch {
            throw .malformedHeader(path: path, reason: "\(error.reason) in header \(text.debugDescription)")
        }
        guard case let .dict(entries) = value else {
            throw .malformedHeader(path: path, reason: "header is not a dict: \(text.debugDescription)")
        }
        let keys = entries.map(\.key)
        guard keys.sorted() == ["descr", "fortran_order", "shape"] else {
            throw .malformedHeader(
                path: path,
                reason: "expected the keys 'descr', 'fortran_order' and 'shape', found \(keys)")
        }
        let fields = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })

        guard case let .string(descr) = fields["descr"] else {
            throw .unsupportedDType(path: path, descr: fields["descr"].map { "\($0)" } ?? "")
        }
        guard descr == "<f4" else {
            throw .unsupportedDType(path: path, descr: descr)
        }
        guard case let .bool(fortranOrder) = fields["fortran_order"] else {
            throw .malformedHeader(path: path, reason: "'fortran_order' is not True or False")
        }
        guard !fortranOrder else {
            throw .fortranOrder(path: path)
        }
        guard case let .tuple(items) = fields["shape"] else {
            throw .malformedHeader(path: path, reason: "'shape' is not a tuple")
        }
        var shape: [Int] = []
        for item in items {
            guard case let .integer(dimension) = item, dimension >= 0 else {
                throw .malformedHeader(
                    path: path, reason: "'shape' must hold non-negative integers, found \(item)")
            }
            shape.append(dimension)
        }
        return shape
    }
}

/// Errors from reading or writing .npy files. Each names the file.
public enum NpyError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The file does not start with the .npy magic string; `found` is its first bytes in hex.
    case notNpy(path: String, found: String)
    case unsupportedVersion(path: String, major: Int, minor: Int)
    case malformedHeader(path: String, reason: String)
    /// The dtype is not little-endian float32.
    case unsupportedDType(path: String, descr: String)
    /// The array is stored in Fortran (column-major) order.
    case fortranOrder(path: String)
    /// The data after the header is not `product(shape) * 4` bytes. `expectedBytes` is -1
    /// when the product overflows.
    case dataSizeMismatch(path: String, shape: [Int], expectedBytes: Int, foundBytes: Int)
    /// The element count does not match the shape.
    case valueCountMismatch(shape: [Int], count: Int)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            "'\(path)': file not found"
        case let .unreadable(path, reason):
            "cannot read '\(path)': \(reason)"
        case let .notNpy(path, found):
            "'\(path)' is not a .npy file: expected the magic bytes 93 4e 55 4d 50 59 (\\x93NUMPY), "
                + "found \(found.isEmpty ? "an empty file" : found)"
        case let .unsupportedVersion(path, major, minor):
            "'\(path)': .npy format version \(major).\(minor) is not supported, expected 1.0, 2.0 or 3.0"
        case let .malformedHeader(path, reason):
            "'\(path)': malformed .npy header: \(reason)"
        case let .unsupportedDType(path, descr):
            if descr == ">f4" {
                "'\(path)': data is big-endian float32 ('>f4'), expected little-endian float32 ('<f4'); "
                    + "convert it with x.astype('<f4')"
            } else {
                "'\(path)': dtype '\(descr)' is not supported, expected little-endian float32 ('<f4'); "
                    + "convert it with x.astype('<f4')"
            }
        case let .fortranOrder(path):
            "'\(path)': array is stored in Fortran order, expected C order; "
                + "save np.ascontiguousarray(x) instead"
        case let .dataSizeMismatch(path, shape, expectedBytes, foundBytes):
            if expectedBytes < 0 {
                "'\(path)': shape \(shape) has more elements than memory can address"
            } else if foundBytes < expectedBytes {
                "'\(path)': data is too short: shape \(shape) of float32 needs \(expectedBytes) bytes, "
                    + "found \(foundBytes); the file is truncated"
            } else {
                "'\(path)': data is too long: shape \(shape) of float32 needs \(expectedBytes) bytes, "
                    + "found \(foundBytes)"
            }
        case let .valueCountMismatch(shape, count):
            if shape.contains(where: { $0 < 0 }) {
                "shape \(shape) has a negative dimension"
            } else {
                "shape \(shape) needs \(shape.reduce(1, *)) values, found \(count)"
            }
        case let .unwritable(path, reason):
            "cannot write '\(path)': \(reason)"
        }
    }
}

/// A value of the Python literal subset .npy headers use.
enum PythonLiteral: CustomStringConvertible {
    case string(String)
    case integer(Int)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([(key: String, value: PythonLiteral)])

    var description: String {
        switch self {
        case let .string(text): "'\(text)'"
        case let .integer(number): String(number)
        case let .bool(flag): flag ? "True" : "False"
        case .none: "None"
        case let .tuple(items): "(" + items.map(\.description).joined(separator: ", ") + ")"
        case let .list(items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case let .dict(entries):
            "{" + entries.map { "'\($0.key)': \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

struct PythonLiteralError: Error {
    var reason: String
}

/// A recursive-descent parser for dicts, tuples, lists, strings, integers, True, False and
/// None, the literals `numpy.lib.format` writes into a header.
struct PythonLiteralParser {
    private let characters: [Character]
    private var position = 0
    /// Bounds the nesting depth so a hostile header cannot exhaust the stack.
    private var depth = 0

    init(text: String) {
        characters = Array(text)
    }

    mutating func parseValue() throws(PythonLiteralError) -> PythonLiteral {
        skipWhitespace()
        guard let character = peek() else {
            throw PythonLiteralError(reason: "unexpected end of header")
        }
        switch character {
        case "{":
            return try parseDict()
        case "(":
            let (items, sawComma) = try parseSequence(closing: ")")
            // (2) is the integer 2 in Python, (2,) the one-element tuple.
            if items.count == 1 && !sawComma {
                return items[0]
            }
            return .tuple(items)
        case "[":
            return .list(try parseSequence(closing: "]").items)
        case "'", "\"":
            return .string(try parseString())
        default:
            return try parseWord()
        }
    }

    mutating func expectEnd() throws(PythonLiteralError) {
        skipWhitespace()
        if position < characters.count {
            throw PythonLiteralError(reason: "unexpected '\(characters[position])' after the dict")
        }
    }

    private mutating func parseDict() throws(PythonLiteralError) -> PythonLiteral {
        try enter()
        defer { depth -= 1 }
        position += 1
        var entries: [(key: String, value: PythonLiteral)] = []
        while true {
            skipWhitespace()
            if peek() == "}" {
                position += 1
                return .dict(entries)
            }
            guard case let .string(key) = try parseValue() else {
                throw PythonLiteralError(reason: "dict key is not a string")
            }
            skipWhitespace()
            guard peek() == ":" else {
                throw PythonLiteralError(reason: "expected ':' after the key '\(key)'")
            }
            position += 1
            if entries.contains(where: { $0.key == key }) {
                throw PythonLiteralError(reason: "key '\(key)' appears twice")
            }
            entries.append((key, try parseValue()))
            skipWhitespace()
            if peek() == "," {
                position += 1
            } else if peek() != "}" {
                throw PythonLiteralError(reason: "expected ',' or '}' after the value of '\(key)'")
            }
        }
    }

    private mutating func parseSequence(
        closing: Character
    ) throws(PythonLiteralError) -> (items: [PythonLiteral], sawComma: Bool) {
        try enter()
        defer { depth -= 1 }
        position += 1
        var items: [PythonLiteral] = []
        var sawComma = false
        while true {
            skipWhitespace()
            if peek() == closing {
                position += 1
                return (items, sawComma)
            }
            items.append(try parseValue())
            skipWhitespace()
            if peek() == "," {
                sawComma = true
                position += 1
            } else if peek() != closing {
                throw PythonLiteralError(reason: "expected ',' or '\(closing)'")
            }
        }
    }

    private mutating func parseString() throws(PythonLiteralError) -> String {
        let quote = characters[position]
        position += 1
        var text = ""
        while let character = peek() {
            position += 1
            if character == quote {
                return text
            }
            // No header NumPy writes has escapes; rejecting them keeps the parser small.
            if character == "\\" {
                throw PythonLiteralError(reason: "backslash escapes in strings are not supported")
            }
            text.append(character)
        }
        throw PythonLiteralError(reason: "unterminated string")
    }

    private mutating func parseWord() throws(PythonLiteralError) -> PythonLiteral {
        let start = position
        while let character = peek(), character.isLetter || character.isNumber || character == "-"
            || character == "+" || character == "_"
        {
            position += 1
        }
        let word = String(characters[start..<position])
        switch word {
        case "True": return .bool(true)
        case "False": return .bool(false)
        case "None": return .none
        default:
            if let number = Int(word) {
                return .integer(number)
            }
            if word.isEmpty {
                throw PythonLiteralError(reason: "unexpected '\(characters[position])'")
            }
            throw PythonLiteralError(reason: "unsupported literal '\(word)'")
        }
    }

    private mutating func enter() throws(PythonLiteralError) {
        depth += 1
        if depth > 16 {
            throw PythonLiteralError(reason: "nesting deeper than 16 levels")
        }
    }

    private mutating func skipWhitespace() {
        while let character = peek(), character.isWhitespace {
            position += 1
        }
    }

    private func peek() -> Character? {
        position < characters.count ? characters[position] : nil
    }
}
