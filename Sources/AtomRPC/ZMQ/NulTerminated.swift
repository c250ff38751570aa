extension String {
    /// The text of a NUL-terminated buffer that libzmq filled in (keys, endpoints, addresses):
    /// everything before the first NUL, or the whole buffer when it has none.
    init(nulTerminated buffer: [CChar]) {
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
