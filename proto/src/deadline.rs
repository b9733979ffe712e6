//! The caller's deadline from the `grpc-timeout` header. tonic enforces it until the
//! response headers are sent; a server stream must enforce it itself.

use std::time::Duration;

/// The `grpc-timeout` of a request, if it carries one (`<digits><unit>`, units
/// `H M S m u n`).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

fn parse(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_garbage_does_not() {
        assert_eq!(parse("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("5000000n"), Some(Duration::from_millis(5)));
        for bad in ["", "m", "12x", "123456789m", "-1S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_the_header_tonic_sets() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(250));
        let parsed = grpc_timeout(request.metadata()).unwrap();
        assert!(
            parsed <= Duration::from_millis(250) && parsed >= Duration::from_millis(249),
            "{parsed:?}"
        );
    }
}
