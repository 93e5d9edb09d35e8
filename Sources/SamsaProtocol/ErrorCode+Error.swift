/// An error code is what a broker's operation fails with (`Result<Value, ErrorCode>`): the code it
/// answers the request with.
extension ErrorCode: Error {}
