// A reader for the Python pickles that hold InsightFace's face-verification sets (lfw.bin,
// cfp_fp.bin, agedb_30.bin, calfw.bin, cplfw.bin). It interprets a fixed subset of the pickle
// opcodes as data and never runs code: a GLOBAL or STACK_GLOBAL name is only compared against
// an allow-list, and REDUCE builds a value only for those names.
//
// Opcode bytes and argument layouts are those of CPython's Lib/pickle.py (protocols 2 to 4).

/// A value decoded from a pickle, as far as verification sets need.
public indirect enum PickleValue: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// A Python 2 `str` (SHORT_BINSTRING, BINSTRING) or Python 3 `bytes`.
    case bytes(ArraySlice<UInt8>)
    /// A Python 3 `str` (BINUNICODE and friends).
    case string(String)
    case list([PickleValue])
    case tuple([PickleValue])
    /// A NumPy `uint8` array of any shape, as its raw bytes in memory order.
    case uint8Array(shape: [Int], bytes: ArraySlice<UInt8>)
}

/// A failure to read a pickle, with the byte offset of the opcode involved.
public struct PickleError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// An opcode this reader does not interpret.
        case unsupportedOpcode(UInt8)
        /// An argument or payload runs past the end of the data.
        case truncated(opcode: UInt8, needed: Int, available: Int)
        /// The data ends without a STOP opcode.
        case missingStop
        /// An opcode found fewer values on the stack than it takes, or no MARK.
        case stackUnderflow(opcode: UInt8)
        /// A memo index was read before it was written.
        case missingMemoEntry(Int)
        /// A GLOBAL or STACK_GLOBAL name outside the allow-list.
        case globalNotAllowed(module: String, name: String)
        /// An opcode found a value of the wrong kind.
        case unexpectedValue(opcode: UInt8, expected: String, found: String)
        /// A NumPy array whose dtype or layout is not a `uint8` byte array.
        case unsupportedArray(String)
        /// A length that is negative or larger than `Int.max`.
        case invalidLength(opcode: UInt8, length: Int64)
        /// Lists and tuples nested deeper than `PickleReader.maxNestingDepth`, which includes
        /// a list that contains itself.
        case nestingTooDeep(limit: Int)
    }

    public var path: String
    /// The offset of the opcode byte in the file.
    public var offset: Int
    public var reason: Reason

    public var description: String {
        let location = "'\(path)' at byte \(offset)"
        switch reason {
        case let .unsupportedOpcode(byte):
            return "\(location): unsupported pickle opcode \(Self.hex(byte))\(Self.printable(byte)); "
                + "expected a face-verification set (a tuple of a list of images and a list of bools)"
        case let .truncated(opcode, needed, available):
            return "\(location): opcode \(Self.hex(opcode)) needs \(needed) bytes but only \(available) "
                + "remain; the file is truncated, copy it again"
        case .missingStop:
            return "\(location): the pickle ends without a STOP opcode; the file is truncated"
        case let .stackUnderflow(opcode):
            return "\(location): opcode \(Self.hex(opcode)) found too few values on the stack; "
                + "the pickle is corrupt"
        case let .missingMemoEntry(index):
            return "\(location): memo entry \(index) is read before it is written; the pickle is corrupt"
        case let .globalNotAllowed(module, name):
            return "\(location): the pickle refers to '\(module).\(name)', which is not a NumPy "
                + "array constructor; only bytes images and NumPy uint8 arrays are accepted"
        case let .unexpectedValue(opcode, expected, found):
            return "\(location): opcode \(Self.hex(opcode)) expected \(expected), found \(found)"
        case let .unsupportedArray(detail):
            return "\(location): unsupported NumPy array: \(detail); expected a uint8 array of "
                + "encoded image bytes"
        case let .invalidLength(opcode, length):
            return "\(location): opcode \(Self.hex(opcode)) has invalid length \(length)"
        case let .nestingTooDeep(limit):
            return "\(location): expected lists and tuples nested at most \(limit) deep, found "
                + "deeper nesting or a list that contains itself; a verification set nests 2 deep"
        }
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return "0x" + (byte < 16 ? "0" + digits : digits)
    }

    private static func printable(_ byte: UInt8) -> String {
        (0x21...0x7e).contains(byte) ? " ('\(Character(Unicode.Scalar(byte)))')" : ""
    }
}

/// Decodes the pickle subset used by face-verification `.bin` files.
///
/// Supported: PROTO, FRAME, STOP, MARK, NONE, NEWTRUE, NEWFALSE, BININT, BININT1, BININT2,
/// SHORT_BINSTRING, BINSTRING, SHORT_BINBYTES, BINBYTES, BINBYTES8, SHORT_BINUNICODE,
/// BINUNICODE, BINUNICODE8, EMPTY_LIST, APPEND, APPENDS, EMPTY_TUPLE, TUPLE, TUPLE1-3,
/// BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET, and GLOBAL, STACK_GLOBAL, REDUCE and
/// BUILD for these callables only:
///
/// | Name | Built value |
/// |---|---|
/// | `numpy.core.multiarray._reconstruct`, `numpy._core.multiarray._reconstruct` | an empty array that BUILD fills |
/// | `numpy.ndarray` | the class argument of `_reconstruct` |
/// | `numpy.dtype` | a dtype, accepted by BUILD when it is `u1` (uint8) |
/// | `_codecs.encode` | bytes from a `str` and `'latin1'`, how Python 3 writes bytes at protocol 2 |
///
/// Every other opcode, every other name and every length past the end of the data throws
/// `PickleError`.
public struct PickleReader {
    /// The maximum nesting depth of lists and tuples that `decode` accepts. A verification set needs
    /// 2 (a tuple of lists). The limit keeps the conversion's recursion, and the release of the
    /// decoded value, from running off the end of the stack.
    public static let maxNestingDepth = 100

    // Opcode bytes from CPython's Lib/pickle.py.
    enum Opcode {
        static let mark: UInt8 = 0x28  // '('
        static let emptyTuple: UInt8 = 0x29  // ')'
        static let stop: UInt8 = 0x2e  // '.'
        static let binbytes: UInt8 = 0x42  // 'B'
        static let shortBinbytes: UInt8 = 0x43  // 'C'
        static let binint: UInt8 = 0x4a  // 'J'
        static let binint1: UInt8 = 0x4b  // 'K'
        static let binint2: UInt8 = 0x4d  // 'M'
        static let none: UInt8 = 0x4e  // 'N'
        static let reduce: UInt8 = 0x52  // 'R'
        static let binstring: UInt8 = 0x54  // 'T'
        static let shortBinstring: UInt8 = 0x55  // 'U'
        static let binunicode: UInt8 = 0x58  // 'X'
        static let emptyList: UInt8 = 0x5d  // ']'
        static let append: UInt8 = 0x61  // 'a'
        static let build: UInt8 = 0x62  // 'b'
        static let global: UInt8 = 0x63  // 'c'
        static let appends: UInt8 = 0x65  // 'e'
        static let binget: UInt8 = 0x68  // 'h'
        static let longBinget: UInt8 = 0x6a  // 'j'
        static let binput: UInt8 = 0x71  // 'q'
        static let longBinput: UInt8 = 0x72  // 'r'
        static let tuple: UInt8 = 0x74  // 't'
        static let proto: UInt8 = 0x80
        static let tuple1: UInt8 = 0x85
        static let tuple2: UInt8 = 0x86
        static let tuple3: UInt8 = 0x87
        static let newtrue: UInt8 = 0x88
        static let newfalse: UInt8 = 0x89
        static let shortBinunicode: UInt8 = 0x8c
        static let binunicode8: UInt8 = 0x8d
        static let binbytes8: UInt8 = 0x8e
        static let stackGlobal: UInt8 = 0x93
        static let memoize: UInt8 = 0x94
        static let frame: UInt8 = 0x95
    }

    /// Stack entries: scalars and bytes as values, lists and tuples as boxes, plus the objects
    /// that only exist while a NumPy array is rebuilt. Lists are boxed because APPEND mutates
    /// the list that the memo may also refer to, as in Python. Lists and tuples become
    /// `PickleValue`s only at STOP, where `value(of:expected:)` bounds their nesting.
    private enum Item {
        /// A scalar, bytes, a string or the empty tuple: never a container of other items.
        case value(PickleValue)
        case list(ContainerBox)
        case tuple(ContainerBox)
        case mark
        case callable(Callable)
        case pendingArray(ArrayBox)
        case dtype(DTypeBox)
    }

    /// The items of a list or a tuple. Every box is also kept in `PickleReader.containers`,
    /// which empties them all when decoding ends. That breaks reference cycles (a list appended
    /// to itself through the memo) that would otherwise leak, and it frees a deep chain of
    /// boxes one at a time instead of by recursion.
    private final class ContainerBox {
        var items: [Item]

        init(items: [Item] = []) {
            self.items = items
        }
    }

    private final class ArrayBox {
        var shape: [Int]?
        var bytes: ArraySlice<UInt8>?
    }

    private final class DTypeBox {
        let name: String

        init(name: String) {
            self.name = name
        }
    }

    private enum Callable {
        case reconstruct
        case ndarrayClass
        case dtypeClass
        case codecsEncode
    }

    private static let allowedGlobals: [String: Callable] = [
        "numpy.core.multiarray._reconstruct": .reconstruct,
        "numpy._core.multiarray._reconstruct": .reconstruct,
        "numpy.ndarray": .ndarrayClass,
        "numpy.dtype": .dtypeClass,
        "_codecs.encode": .codecsEncode,
    ]

    private let data: [UInt8]
    private let path: String
    private var position = 0
    private var opcodeOffset = 0
    private var opcode: UInt8 = 0
    private var stack: [Item] = []
    private var memo: [Int: Item] = [:]
    private var containers: [ContainerBox] = []

    /// Decodes one pickle from `data`. `path` names the source in errors.
    ///
    /// - Throws: `PickleError` for an opcode or global outside the supported subset, a
    ///   truncated or inconsistent stream, or a NumPy array that is not `uint8`.
    public static func decode(_ data: [UInt8], path: String) throws(PickleError) -> PickleValue {
        var reader = PickleReader(data: data, path: path)
        defer {
            for box in reader.containers {
                box.items.removeAll()
            }
        }
        return try reader.run()
    }

    private init(data: [UInt8], path: String) {
        self.data = data
        self.path = path
    }

    private mutating func run() throws(PickleError) -> PickleValue {
        while position < data.count {
            opcodeOffset = position
            opcode = data[position]
            position += 1
            if opcode == Opcode.stop {
                let top = try pop()
                return try value(of: top, expected: "the pickled object")
            }
            try execute()
        }
        opcodeOffset = data.count
        throw error(.missingStop)
    }

    private mutating func execute() throws(PickleError) {
        switch opcode {
        case Opcode.proto:
            _ = try readBytes(1)
        case Opcode.frame:
            // A frame only announces how many bytes follow; the opcodes inside are read as usual.
            _ = try readLength(byteCount: 8)
        case Opcode.mark:
            stack.append(.mark)
        case Opcode.none:
            stack.append(.value(.none))
        case Opcode.newtrue:
            stack.append(.value(.bool(true)))
        case Opcode.newfalse:
            stack.append(.value(.bool(false)))
        case Opcode.binint:
            let raw = try readUnsigned(byteCount: 4)
            stack.append(.value(.int(Int(Int32(bitPattern: UInt32(raw))))))
        case Opcode.binint1:
            stack.append(.value(.int(Int(try readUnsigned(byteCount: 1)))))
        case Opcode.binint2:
            stack.append(.value(.int(Int(try readUnsigned(byteCount: 2)))))
        case Opcode.shortBinstring, Opcode.shortBinbytes:
            let length = try readLength(byteCount: 1)
            stack.append(.value(.bytes(try readBytes(length))))
        case Opcode.binstring:
            // Python 2 writes this length as a signed 32-bit integer.
            let raw = try readUnsigned(byteCount: 4)
            let length = Int(Int32(bitPattern: UInt32(raw)))
            guard length >= 0 else {
                throw error(.invalidLength(opcode: opcode, length: Int64(length)))
            }
            stack.append(.value(.bytes(try readBytes(length))))
        case Opcode.binbytes:
            let length = try readLength(byteCount: 4)
            stack.append(.value(.bytes(try readBytes(length))))
        case Opcode.binbytes8:
            let length = try readLength(byteCount: 8)
            stack.append(.value(.bytes(try readBytes(length))))
        case Opcode.shortBinunicode:
            try pushString(length: try readLength(byteCount: 1))
        case Opcode.binunicode:
            try pushString(length: try readLength(byteCount: 4))
        case Opcode.binunicode8:
            try pushString(length: try readLength(byteCount: 8))
        case Opcode.emptyList:
            let box = ContainerBox()
            containers.append(box)
            stack.append(.list(box))
        case Opcode.append:
            let item = try pop()
            try topList().items.append(item)
        case Opcode.appends:
            let items = try popToMark()
            try topList().items.append(contentsOf: items)
        case Opcode.emptyTuple:
            stack.append(.value(.tuple([])))
        case Opcode.tuple:
            try pushTuple(try popToMark())
        case Opcode.tuple1, Opcode.tuple2, Opcode.tuple3:
            let count = Int(opcode - Opcode.tuple1) + 1
            var items: [Item] = []
            for _ in 0..<count {
                items.insert(try pop(), at: 0)
            }
            try pushTuple(items)
        case Opcode.binput:
            try storeMemo(index: Int(try readUnsigned(byteCount: 1)))
        case Opcode.longBinput:
            try storeMemo(index: Int(try readUnsigned(byteCount: 4)))
        case Opcode.memoize:
            try storeMemo(index: memo.count)
        case Opcode.binget:
            try loadMemo(index: Int(try readUnsigned(byteCount: 1)))
        case Opcode.longBinget:
            try loadMemo(index: Int(try readUnsigned(byteCount: 4)))
        case Opcode.global:
            let module = try readLine()
            let name = try readLine()
            try pushGlobal(module: module, name: name)
        case Opcode.stackGlobal:
            let name = try popString()
            let module = try popString()
            try pushGlobal(module: module, name: name)
        case Opcode.reduce:
            try reduce()
        case Opcode.build:
            try build()
        default:
            throw error(.unsupportedOpcode(opcode))
        }
    }

    // MARK: - Reading arguments

    private func error(_ reason: PickleError.Reason) -> PickleError {
        PickleError(path: path, offset: opcodeOffset, reason: reason)
    }

    private mutating func readBytes(_ count: Int) throws(PickleError) -> ArraySlice<UInt8> {
        let available = data.count - position
        guard count <= available else {
            throw error(.truncated(opcode: opcode, needed: count, available: available))
        }
        defer { position += count }
        return data[position..<(position + count)]
    }

    /// Reads a little-endian unsigned integer of 1, 2, 4 or 8 bytes.
    private mutating func readUnsigned(byteCount: Int) throws(PickleError) -> UInt64 {
        let bytes = try readBytes(byteCount)
        var value: UInt64 = 0
        for (shift, byte) in bytes.enumerated() {
            value |= UInt64(byte) << (8 * UInt64(shift))
        }
        return value
    }

    /// Reads an unsigned length and checks that it fits in `Int`. The caller's `readBytes`
    /// then checks it against the bytes left.
    private mutating func readLength(byteCount: Int) throws(PickleError) -> Int {
        let raw = try readUnsigned(byteCount: byteCount)
        guard raw <= UInt64(Int.max) else {
            throw error(.invalidLength(opcode: opcode, length: Int64(bitPattern: raw)))
        }
        return Int(raw)
    }

    /// Reads a newline-terminated argument (GLOBAL's module and name).
    private mutating func readLine() throws(PickleError) -> String {
        let available = data.count - position
        guard let end = data[position...].firstIndex(of: 0x0a) else {
            throw error(.truncated(opcode: opcode, needed: available + 1, available: available))
        }
        let line = String(decoding: data[position..<end], as: UTF8.self)
        position = end + 1
        return line
    }

    private mutating func pushString(length: Int) throws(PickleError) {
        let bytes = try readBytes(length)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw error(.unexpectedValue(opcode: opcode, expected: "UTF-8 text", found: "invalid UTF-8"))
        }
        stack.append(.value(.string(text)))
    }

    // MARK: - Stack and memo

    private mutating func pop() throws(PickleError) -> Item {
        guard let top = stack.popLast() else { throw error(.stackUnderflow(opcode: opcode)) }
        if case .mark = top { throw error(.stackUnderflow(opcode: opcode)) }
        return top
    }

    private mutating func popToMark() throws(PickleError) -> [Item] {
        let markIndex = stack.lastIndex { item in
            if case .mark = item { true } else { false }
        }
        guard let markIndex else { throw error(.stackUnderflow(opcode: opcode)) }
        let items = Array(stack[(markIndex + 1)...])
        stack.removeSubrange(markIndex...)
        return items
    }

    private func topList() throws(PickleError) -> ContainerBox {
        guard let top = stack.last else { throw error(.stackUnderflow(opcode: opcode)) }
        guard case let .list(box) = top else {
            throw error(.unexpectedValue(opcode: opcode, expected: "a list", found: kind(of: top)))
        }
        return box
    }

    private mutating func popString() throws(PickleError) -> String {
        let item = try pop()
        guard case let .value(.string(text)) = item else {
            throw error(.unexpectedValue(opcode: opcode, expected: "a str", found: kind(of: item)))
        }
        return text
    }

    private mutating func storeMemo(index: Int) throws(PickleError) {
        guard let top = stack.last else { throw error(.stackUnderflow(opcode: opcode)) }
        memo[index] = top
    }

    private mutating func loadMemo(index: Int) throws(PickleError) {
        guard let item = memo[index] else { throw error(.missingMemoEntry(index)) }
        stack.append(item)
    }

    private mutating func pushTuple(_ items: [Item]) throws(PickleError) {
        let box = ContainerBox(items: items)
        containers.append(box)
        stack.append(.tuple(box))
    }

    private func tupleItems(_ item: Item, expected: String) throws(PickleError) -> [Item] {
        switch item {
        case let .value(.tuple(values)):
            return values.map { .value($0) }
        case let .tuple(box):
            return box.items
        default:
            throw error(.unexpectedValue(opcode: opcode, expected: expected, found: kind(of: item)))
        }
    }

    private mutating func pushGlobal(module: String, name: String) throws(PickleError) {
        guard let callable = Self.allowedGlobals["\(module).\(name)"] else {
            throw error(.globalNotAllowed(module: module, name: name))
        }
        stack.append(.callable(callable))
    }

    // MARK: - NumPy arrays

    private mutating func reduce() throws(PickleError) {
        let argumentsItem = try pop()
        let callableItem = try pop()
        guard case let .callable(callable) = callableItem else {
            throw error(
                .unexpectedValue(opcode: opcode, expected: "an allowed global", found: kind(of: callableItem)))
        }
        let arguments = try tupleItems(argumentsItem, expected: "an argument tuple")
        switch callable {
        case .reconstruct:
            // numpy's _reconstruct(ndarray, (0,), b'b') makes an empty array that BUILD fills.
            guard arguments.count == 3, case .callable(.ndarrayClass) = arguments[0] else {
                throw error(.unsupportedArray("_reconstruct is not called with numpy.ndarray"))
            }
            stack.append(.pendingArray(ArrayBox()))
        case .dtypeClass:
            // Python 2 pickles the type string as a str, which reads as bytes here.
            let name: String
            switch arguments.first {
            case let .value(.string(text)):
                name = text
            case let .value(.bytes(bytes)):
                name = String(decoding: bytes, as: UTF8.self)
            default:
                throw error(.unsupportedArray("numpy.dtype is called without a type string"))
            }
            stack.append(.dtype(DTypeBox(name: name)))
        case .codecsEncode:
            stack.append(.value(.bytes(try latin1Bytes(arguments)[...])))
        case .ndarrayClass:
            throw error(.unsupportedArray("numpy.ndarray is called directly"))
        }
    }

    /// Evaluates `_codecs.encode(text, 'latin1')`: Python 3 writes `bytes` at protocol 2 as
    /// that call on the bytes decoded as Latin-1, one code point per byte.
    private func latin1Bytes(_ arguments: [Item]) throws(PickleError) -> [UInt8] {
        guard arguments.count == 2, case let .value(.string(text)) = arguments[0],
            case let .value(.string(encoding)) = arguments[1],
            encoding == "latin1" || encoding == "latin-1"
        else {
            throw error(
                .unexpectedValue(
                    opcode: opcode, expected: "_codecs.encode(str, 'latin1')", found: "other arguments"))
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            guard scalar.value < 256 else {
                throw error(
                    .unexpectedValue(
                        opcode: opcode, expected: "Latin-1 text",
                        found: "code point U+\(String(scalar.value, radix: 16, uppercase: true))"))
            }
            bytes.append(UInt8(scalar.value))
        }
        return bytes
    }

    private mutating func build() throws(PickleError) {
        let stateItem = try pop()
        guard let target = stack.last else { throw error(.stackUnderflow(opcode: opcode)) }
        let state = try tupleItems(stateItem, expected: "a state tuple")
        switch target {
        case .dtype:
            // The state (version, byte order, subarray, names, fields, item size, alignment,
            // flags) changes nothing for one-byte uint8, the only dtype `fill` accepts.
            _ = state
        case let .pendingArray(box):
            try fill(box, state: state)
        default:
            throw error(
                .unexpectedValue(opcode: opcode, expected: "a NumPy array or dtype", found: kind(of: target)))
        }
    }

    /// Applies ndarray.__setstate__'s state: (version, shape, dtype, is_fortran, raw bytes).
    private func fill(_ box: ArrayBox, state: [Item]) throws(PickleError) {
        guard state.count == 5 else {
            throw error(.unsupportedArray("the array state has \(state.count) items, expected 5"))
        }
        var shape: [Int] = []
        for item in try tupleItems(state[1], expected: "the array shape") {
            guard case let .value(.int(extent)) = item, extent >= 0 else {
                throw error(.unsupportedArray("the shape contains \(kind(of: item))"))
            }
            shape.append(extent)
        }
        guard case let .dtype(dtype) = state[2] else {
            throw error(.unsupportedArray("the dtype is \(kind(of: state[2]))"))
        }
        guard dtype.name == "u1" || dtype.name == "uint8" else {
            throw error(.unsupportedArray("dtype '\(dtype.name)'"))
        }
        guard case let .value(.bytes(bytes)) = state[4] else {
            throw error(.unsupportedArray("the data is \(kind(of: state[4])), not raw bytes"))
        }
        var count = 1
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw error(.unsupportedArray("shape \(shape) overflows")) }
            count = product
        }
        guard count == bytes.count else {
            throw error(.unsupportedArray("shape \(shape) needs \(count) bytes, found \(bytes.count)"))
        }
        box.shape = shape
        box.bytes = bytes
    }

    // MARK: - Conversion to values

    /// Converts an item to a value, checking that lists and tuples nest at most
    /// `maxNestingDepth` deep.
    private func value(of item: Item, expected: String) throws(PickleError) -> PickleValue {
        var converted: [ObjectIdentifier: (value: PickleValue, height: Int)] = [:]
        return try value(of: item, expected: expected, depth: 0, converted: &converted).value
    }

    /// Returns the value and its height: 0 for a scalar, 1 + the tallest item for a container.
    /// `converted` holds each box already converted, so a box that the memo put in many places
    /// is converted once and shared, instead of once per path to it.
    private func value(
        of item: Item, expected: String, depth: Int,
        converted: inout [ObjectIdentifier: (value: PickleValue, height: Int)]
    ) throws(PickleError) -> (value: PickleValue, height: Int) {
        let box: ContainerBox
        switch item {
        case let .value(value):
            return (value, 0)
        case let .list(list):
            box = list
        case let .tuple(tuple):
            box = tuple
        case let .pendingArray(array):
            guard let shape = array.shape, let bytes = array.bytes else {
                throw error(.unsupportedArray("an array was never given its state by BUILD"))
            }
            return (.uint8Array(shape: shape, bytes: bytes), 0)
        case .mark, .callable, .dtype:
            throw error(.unexpectedValue(opcode: opcode, expected: expected, found: kind(of: item)))
        }
        // A list that contains itself recurses until this check fails.
        guard depth < Self.maxNestingDepth else {
            throw error(.nestingTooDeep(limit: Self.maxNestingDepth))
        }
        if let known = converted[ObjectIdentifier(box)] {
            guard depth + known.height <= Self.maxNestingDepth else {
                throw error(.nestingTooDeep(limit: Self.maxNestingDepth))
            }
            return known
        }
        var values: [PickleValue] = []
        values.reserveCapacity(box.items.count)
        var height = 1
        for element in box.items {
            let (value, elementHeight) = try self.value(
                of: element, expected: expected, depth: depth + 1, converted: &converted)
            values.append(value)
            height = max(height, elementHeight + 1)
        }
        let result: PickleValue
        if case .list = item {
            result = .list(values)
        } else {
            result = .tuple(values)
        }
        converted[ObjectIdentifier(box)] = (result, height)
        return (result, height)
    }

    private func kind(of item: Item) -> String {
        switch item {
        case .mark: "a MARK"
        case .callable: "a global"
        case .pendingArray: "a NumPy array"
        case .dtype: "a NumPy dtype"
        case .list: "a list"
        case .tuple: "a tuple"
        case let .value(value): value.kindDescription
        }
    }
}

extension PickleValue {
    /// The Python type of the value, for messages.
    public var kindDescription: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int: "an int"
        case .bytes: "bytes"
        case .string: "a str"
        case let .list(items): "a list of \(items.count) items"
        case let .tuple(items): "a \(items.count)-tuple"
        case .uint8Array: "a NumPy uint8 array"
        }
    }
}
