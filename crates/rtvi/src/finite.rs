//! Encoding of `f64` fields: JSON has no NaN or infinity, and serde_json would silently write
//! `null` for them, so a non-finite value is an encoding error instead.

use serde::Serializer;
use serde::ser::{Error, SerializeSeq};

/// Serialises a finite `f64`; NaN and infinities fail with an error.
pub(crate) fn f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        Err(S::Error::custom(format!("{value} cannot be encoded as a JSON number")))
    }
}

/// Serialises a list of finite `f64`s; any NaN or infinity fails with an error.
pub(crate) fn vec<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(values.len()))?;
    for value in values {
        seq.serialize_element(&Finite(*value))?;
    }
    seq.end()
}

/// One `f64` serialised through [`f64`].
struct Finite(f64);

impl serde::Serialize for Finite {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        f64(&self.0, serializer)
    }
}
