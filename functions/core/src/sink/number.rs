//! Numbers as DynamoDB holds them: every digit kept (up to its 38), in one canonical text.
//!
//! serde_json's `arbitrary_precision` keeps a number's text as it arrived; this module turns it
//! into plain decimal notation without redundant zeros (`98001.0` and `9.8022E4` are `98001` and
//! `98022`), or says why DynamoDB cannot hold it.

use serde_json::{Number, Value};

/// DynamoDB's limits: 38 significant digits; magnitudes from 1E-130 up to (not including) 1E+126.
const MAX_DIGITS: usize = 38;
const MIN_EXPONENT: i64 = -130;
const MAX_EXPONENT: i64 = 125;

/// The canonical text of a JSON number's text, or why DynamoDB cannot hold it.
pub fn canonical(text: &str) -> Result<String, String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => {
            let exponent = unsigned[i + 1..].parse::<i64>();
            (&unsigned[..i], exponent.map_err(|_| format!("{text} is not a number"))?)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        return Err(format!("{text} is not a number"));
    }
    // value = digits × 10^scale, with neither leading nor trailing zeros in digits.
    let all = format!("{whole}{fraction}");
    let significant = all.trim_start_matches('0');
    let digits = significant.trim_end_matches('0');
    if digits.is_empty() {
        return Ok("0".into());
    }
    let length = digits.len() as i64;
    let scale = exponent - fraction.len() as i64 + (significant.len() - digits.len()) as i64;
    if digits.len() > MAX_DIGITS {
        return Err(format!(
            "{text}, which has {} significant digits: DynamoDB holds at most {MAX_DIGITS}",
            digits.len()
        ));
    }
    let magnitude = length + scale - 1; // the exponent in scientific notation
    if !(MIN_EXPONENT..=MAX_EXPONENT).contains(&magnitude) {
        return Err(format!(
            "{text}, out of DynamoDB's range (magnitudes from 1E{MIN_EXPONENT} to below 1E+{})",
            MAX_EXPONENT + 1
        ));
    }
    let sign = if negative { "-" } else { "" };
    let point = length + scale; // digits before the decimal point
    Ok(if scale >= 0 {
        format!("{sign}{digits}{}", "0".repeat(scale as usize))
    } else if point > 0 {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(-point as usize))
    })
}

/// Rewrites every number inside `value` to its canonical text; the first one DynamoDB cannot
/// hold is named by its path under `path`.
pub fn canonicalize(value: &mut Value, path: &str) -> Result<(), String> {
    match value {
        Value::Number(n) => {
            let text = canonical(&n.to_string()).map_err(|why| format!("{path} is {why}"))?;
            *n = parse(&text);
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                canonicalize(item, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                let at = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                canonicalize(field, &at)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
    Ok(())
}

fn parse(canonical: &str) -> Number {
    // A canonical text is a valid JSON number, and arbitrary_precision keeps it as it is.
    serde_json::from_str(canonical).unwrap_or_else(|_| Number::from(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_texts_drop_redundant_zeros_and_keep_every_digit() {
        for (text, expected) in [
            ("0", "0"),
            ("-0.0", "0"),
            ("98001.0", "98001"),
            ("9.8022E4", "98022"),
            ("1.50E2", "150"),
            ("-12.500", "-12.5"),
            ("0.000123", "0.000123"),
            ("123e-5", "0.00123"),
            ("1E+3", "1000"),
            ("00042", "42"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345678",
            ),
            ("1e125", &format!("1{}", "0".repeat(125))),
            ("1e-130", &format!("0.{}1", "0".repeat(129))),
        ] {
            assert_eq!(canonical(text).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn what_dynamodb_cannot_hold_is_refused() {
        for text in ["123456789012345678901234567890123456789", "1e126", "1e-131", "-9.9e200"] {
            assert!(canonical(text).is_err(), "{text}");
        }
        assert!(
            canonical("1200000000000000000000000000000000000000000").is_ok(),
            "trailing zeros are not digits"
        );
    }
}
