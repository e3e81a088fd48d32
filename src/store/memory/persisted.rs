//! How the embedded store's tables are written to its snapshot where serde has no way of its
//! own: an `Instant` as wall-clock milliseconds since the epoch (it comes back as the same
//! remaining time; what expired while the gateway was down is gone at the first sweep), and a
//! map keyed by tuples, which JSON cannot name, as a list of pairs.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `Instant` as wall-clock milliseconds since the epoch.
pub(super) mod instant {
    use super::*;

    pub fn to_ms(at: Instant) -> i64 {
        let now = Instant::now();
        let ms = crate::time::now_ms();
        if at >= now {
            ms + (at - now).as_millis() as i64
        } else {
            ms - (now - at).as_millis() as i64
        }
    }

    pub fn from_ms(ms: i64) -> Instant {
        let now = Instant::now();
        let diff = ms - crate::time::now_ms();
        if diff >= 0 {
            now + Duration::from_millis(diff as u64)
        } else {
            // Past: as far back as this process's clock goes (it is expired either way).
            now.checked_sub(Duration::from_millis(diff.unsigned_abs()))
                .unwrap_or(now)
        }
    }

    pub fn serialize<S: Serializer>(at: &Instant, s: S) -> Result<S::Ok, S::Error> {
        to_ms(*at).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        i64::deserialize(d).map(from_ms)
    }
}

/// An `Option<Instant>` as [`instant`] writes one.
pub(super) mod maybe_instant {
    use super::*;

    pub fn serialize<S: Serializer>(at: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
        at.map(instant::to_ms).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
        Option::<i64>::deserialize(d).map(|o| o.map(instant::from_ms))
    }
}

/// A map whose values hold an `Instant` as their second part: `(T, Instant)`.
pub(super) mod timed_values {
    use super::*;

    pub fn serialize<K, T, S>(m: &HashMap<K, (T, Instant)>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Eq + Hash,
        T: Serialize,
        S: Serializer,
    {
        s.collect_seq(m.iter().map(|(k, (v, at))| (k, v, instant::to_ms(*at))))
    }

    pub fn deserialize<'de, K, T, D>(d: D) -> Result<HashMap<K, (T, Instant)>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let all = Vec::<(K, T, i64)>::deserialize(d)?;
        Ok(all
            .into_iter()
            .map(|(k, v, ms)| (k, (v, instant::from_ms(ms))))
            .collect())
    }
}

/// A map with keys JSON cannot name (tuples), as a list of pairs.
pub(super) mod pairs {
    use super::*;

    pub fn serialize<K, V, S>(m: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Eq + Hash,
        V: Serialize,
        S: Serializer,
    {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_comes_back_as_the_same_wall_clock_time() {
        let now = crate::time::now_ms();
        for ms in [now + 60_000, now, now - 60_000] {
            let back = instant::to_ms(instant::from_ms(ms));
            assert!((back - ms).abs() <= 2, "{ms} came back as {back}");
        }
        // Long before this process's clock began: expired, whatever it comes back as.
        assert!(instant::from_ms(0) <= Instant::now());
    }

    #[test]
    fn a_tuple_keyed_map_round_trips_as_pairs() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct T(#[serde(with = "pairs")] HashMap<(String, u8), String>);
        let t = T(HashMap::from([
            (("a".into(), 1), "x".into()),
            (("b".into(), 2), "y".into()),
        ]));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
    }
}
