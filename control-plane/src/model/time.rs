//! Timestamps as ECS puts them on the wire: JSON numbers of epoch seconds with
//! millisecond fractions (`1479765460.842`). aws-sdk-rust rejects strings for
//! these members, so numbers are the only encoding we ever emit.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time with millisecond precision, stored as unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// From unix milliseconds.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Unix milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Epoch seconds with a fractional part, the wire form.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        if !secs.is_finite() {
            return Err(serde::de::Error::custom(
                "timestamp must be a finite number",
            ));
        }
        Ok(Timestamp((secs * 1000.0).round() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_epoch_seconds_with_millis() {
        let t = Timestamp::from_millis(1_479_765_460_842);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1479765460.842");
        let back: Timestamp = serde_json::from_str("1479765460.842").unwrap();
        assert_eq!(back, t);
        let whole: Timestamp = serde_json::from_str("1479765460").unwrap();
        assert_eq!(whole.as_millis(), 1_479_765_460_000);
    }
}
