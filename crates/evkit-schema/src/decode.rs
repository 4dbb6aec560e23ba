//! Decoding a validated event into a generated Rust type, accepting what the schema accepts.
//!
//! JSON Schema counts `1.0` and `1e3` as integers (draft 6 on), so a valid event may carry an
//! integral float where the generated type has a `u64`. `serde_json` refuses those. [`decode`]
//! tries the value as it is, and only when that fails retries with every integral float that
//! fits an `i64`/`u64` written as an integer, so no valid event is dead-lettered as `decode`
//! for the way its numbers were spelled. Floats stay floats for `f64` fields (`serde_json` reads
//! an integer into an `f64`), so the retry never changes what a correct decode sees.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// `value` decoded into `T`, integral floats read as integers when the first try fails.
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
    match T::deserialize(value) {
        Ok(t) => Ok(t),
        Err(first) => {
            let mut normal = value.clone();
            if integral_floats_to_integers(&mut normal) {
                T::deserialize(&normal).map_err(|_| first)
            } else {
                Err(first)
            }
        }
    }
}

/// Rewrites integral floats that fit `i64`/`u64` as integers; `true` when anything changed.
fn integral_floats_to_integers(v: &mut Value) -> bool {
    match v {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return false };
            if f.fract() != 0.0 || !f.is_finite() {
                return false;
            }
            // 2^63 and 2^64, exact in f64.
            #[allow(clippy::cast_precision_loss)]
            let two_63 = -(i64::MIN as f64);
            let two_64 = 2.0 * two_63;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let as_int = if (-two_63..two_63).contains(&f) {
                Some(Value::from(f as i64))
            } else if (0.0..two_64).contains(&f) {
                Some(Value::from(f as u64))
            } else {
                None
            };
            match as_int {
                Some(i) => {
                    *v = i;
                    true
                }
                None => false,
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |changed, x| integral_floats_to_integers(x) | changed),
        Value::Object(m) => m
            .values_mut()
            .fold(false, |changed, x| integral_floats_to_integers(x) | changed),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::decode;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Todo {
        id: u64,
        score: f64,
        tags: Vec<i32>,
    }

    #[test]
    fn integral_floats_decode_into_integers_and_floats_stay_floats() {
        let v = json!({"id": 1000.0, "score": 2.0, "tags": [-0.0, 3.0]});
        assert!(
            serde_json::from_value::<Todo>(v.clone()).is_err(),
            "serde alone refuses"
        );
        assert_eq!(
            decode::<Todo>(&v).unwrap(),
            Todo {
                id: 1000,
                score: 2.0,
                tags: vec![0, 3]
            }
        );
        let fractional = json!({"id": 1.5, "score": 2.5, "tags": []});
        let err = decode::<Todo>(&fractional).unwrap_err();
        assert!(err.to_string().contains("1.5"), "{err}");
        let too_big = json!({"id": 1e20, "score": 0, "tags": []});
        assert!(decode::<Todo>(&too_big).is_err(), "no u64 holds 1e20");
    }
}
