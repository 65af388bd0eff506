//! Errors as data: a stable numeric [`ErrorCode`] plus a human message.

use std::fmt;

/// A stable error code, sent as a `u16`. Numbers never change meaning; new codes
/// get new numbers, and numbers this build does not know decode as
/// [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[non_exhaustive]
pub enum ErrorCode {
    /// A frame's payload is not a valid message.
    MalformedFrame,
    /// A frame is larger than the limit in force.
    FrameTooLarge,
    /// The client's protocol version is not supported.
    UnsupportedVersion,
    /// A request came before the handshake, or a second handshake came.
    HandshakeRequired,
    /// An object name breaks the naming rule.
    InvalidName,
    /// The kind in an address is not known.
    UnknownKind,
    /// The address is not of the form `KIND:NAME`.
    InvalidAddress,
    /// No object has that address.
    NotFound,
    /// An object with that address already exists.
    AlreadyExists,
    /// The request does not apply to this kind of object.
    WrongKind,
    /// The caller's credentials do not allow the request.
    PermissionDenied,
    /// A configured limit (objects per user, connections) is reached.
    LimitExceeded,
    /// A message or object size is above the limit in force.
    TooLarge,
    /// A kernel limit stops the request; the message says which and how to raise it.
    KernelLimit,
    /// An argument is out of range or inconsistent.
    InvalidArgument,
    /// The operation timed out.
    TimedOut,
    /// The operation would block (queue empty or full) and blocking was not asked for.
    WouldBlock,
    /// A barrier is broken: a party left or timed out (since version 5).
    Broken,
    /// A system call failed; the message carries the errno text.
    Os,
    /// The daemon is shutting down.
    ShuttingDown,
    /// A bug or an unexpected condition in the daemon.
    Internal,
    /// A code this build does not know (sent by a newer peer).
    #[cfg_attr(test, proptest(skip))]
    Unknown(u16),
}

impl ErrorCode {
    /// The stable number sent on the wire.
    pub fn as_u16(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedFrame => 1,
            FrameTooLarge => 2,
            UnsupportedVersion => 3,
            HandshakeRequired => 4,
            InvalidName => 10,
            UnknownKind => 11,
            InvalidAddress => 12,
            NotFound => 20,
            AlreadyExists => 21,
            WrongKind => 22,
            PermissionDenied => 30,
            LimitExceeded => 40,
            TooLarge => 41,
            KernelLimit => 42,
            InvalidArgument => 50,
            TimedOut => 60,
            WouldBlock => 61,
            Broken => 62,
            Os => 70,
            ShuttingDown => 80,
            Internal => 99,
            Unknown(n) => n,
        }
    }

    /// The code for a wire number; numbers this build does not know become `Unknown(n)`.
    pub fn from_u16(n: u16) -> Self {
        use ErrorCode::*;
        match n {
            1 => MalformedFrame,
            2 => FrameTooLarge,
            3 => UnsupportedVersion,
            4 => HandshakeRequired,
            10 => InvalidName,
            11 => UnknownKind,
            12 => InvalidAddress,
            20 => NotFound,
            21 => AlreadyExists,
            22 => WrongKind,
            30 => PermissionDenied,
            40 => LimitExceeded,
            41 => TooLarge,
            42 => KernelLimit,
            50 => InvalidArgument,
            60 => TimedOut,
            61 => WouldBlock,
            62 => Broken,
            70 => Os,
            80 => ShuttingDown,
            99 => Internal,
            n => Unknown(n),
        }
    }

    /// A short stable identifier, e.g. `permission-denied`, for logs and `--json`.
    pub fn slug(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedFrame => "malformed-frame",
            FrameTooLarge => "frame-too-large",
            UnsupportedVersion => "unsupported-version",
            HandshakeRequired => "handshake-required",
            InvalidName => "invalid-name",
            UnknownKind => "unknown-kind",
            InvalidAddress => "invalid-address",
            NotFound => "not-found",
            AlreadyExists => "already-exists",
            WrongKind => "wrong-kind",
            PermissionDenied => "permission-denied",
            LimitExceeded => "limit-exceeded",
            TooLarge => "too-large",
            KernelLimit => "kernel-limit",
            InvalidArgument => "invalid-argument",
            TimedOut => "timed-out",
            WouldBlock => "would-block",
            Broken => "broken",
            Os => "os-error",
            ShuttingDown => "shutting-down",
            Internal => "internal",
            Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.slug(), self.as_u16())
    }
}

impl bincode::Encode for ErrorCode {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        e: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.as_u16().encode(e)
    }
}

impl<C> bincode::Decode<C> for ErrorCode {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(ErrorCode::from_u16(<u16 as bincode::Decode<C>>::decode(d)?))
    }
}

impl<'de, C> bincode::BorrowDecode<'de, C> for ErrorCode {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(ErrorCode::from_u16(<u16 as bincode::Decode<C>>::decode(d)?))
    }
}

/// An error as it crosses the wire: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode, thiserror::Error)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[error("{message}")]
pub struct WireError {
    /// What went wrong, as a stable number.
    pub code: ErrorCode,
    /// What went wrong, for a person: lowercase, with context, no trailing period.
    pub message: String,
}

impl WireError {
    /// Builds an error from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_numbers() {
        for n in 0..=200u16 {
            assert_eq!(ErrorCode::from_u16(n).as_u16(), n);
        }
    }
}
