//! Value parsers for the command line: durations, sizes, modes, priorities,
//! counts and kinds, with messages that show what is expected.

use std::time::Duration;

use ipc_client::Kind;

/// Parses a duration such as `500ms`, `2s` or `1m 30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (examples: 500ms, 2s, 1m30s)"))
}

/// Parses permission bits written in octal: `0660`, `660` or `0o660`, at most `0777`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("'{s}' is not an octal mode (examples: 0660, 600)"))?;
    if digits.is_empty() || mode > 0o777 {
        return Err(format!(
            "'{s}' is not a permission mode between 0000 and 0777"
        ));
    }
    Ok(mode)
}

/// Parses a count or a size in bytes: `65536`, `64K`, `64KiB`, `1M`, `1MiB`, `1GiB`
/// (K, M and G are powers of 1024, as for pipe buffers), at most `u32::MAX`.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let n = parse_bytes(s)?;
    u32::try_from(n).map_err(|_| format!("'{s}' is too large (at most {})", u32::MAX))
}

/// Parses a size or an offset in bytes, as [`parse_size`] does but up to
/// `u64::MAX` and with `T`/`TiB` too: `4096`, `4KiB`, `1MiB`, `2GiB`, `1TiB`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" | "kiB" | "KB" | "kB" => 1 << 10,
        "M" | "MiB" | "MB" => 1 << 20,
        "G" | "GiB" | "GB" => 1 << 30,
        "T" | "TiB" | "TB" => 1 << 40,
        _ => {
            return Err(format!(
                "'{s}' is not a number or a size (examples: 100, 65536, 64KiB, 1MiB)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a number or a size (examples: 100, 64KiB, 1MiB)"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("'{s}' is too large (at most {})", u64::MAX))
}

/// The highest message priority (POSIX guarantees at least 32 levels; Linux has 32768).
pub const MAX_PRIORITY: u32 = 32767;

/// Parses a message priority, 0-32767.
pub fn parse_priority(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u64>() {
        Ok(p) if p <= u64::from(MAX_PRIORITY) => Ok(p as u32),
        _ => Err(format!("the priority must be 0-{MAX_PRIORITY}")),
    }
}

/// Parses a message count: a whole number, at least 1.
pub fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("the count must be at least 1".into()),
        Err(_) => Err("the count must be a whole number, at least 1".into()),
    }
}

/// The longest `--spin-us` a ring wait may spin before sleeping: 1 s.
pub const MAX_SPIN_US: u64 = 1_000_000;

/// Parses `--spin-us`: whole microseconds, 0 (no spinning) to [`MAX_SPIN_US`].
pub fn parse_spin(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(us) if us <= MAX_SPIN_US => Ok(us),
        _ => Err(format!(
            "the spin must be whole microseconds, 0-{MAX_SPIN_US} (e.g. 50)"
        )),
    }
}

/// Parses an object kind (`mq`, `pipe`, `fifo`, `shm`, …) as the daemon would: an unknown
/// one is the daemon's `unknown-kind` error.
pub fn parse_kind(s: &str) -> Result<Kind, ipc_client::Error> {
    s.parse::<Kind>().map_err(ipc_client::Error::Server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_are_bounded_microseconds() {
        assert_eq!(parse_spin("0"), Ok(0));
        assert_eq!(parse_spin("50"), Ok(50));
        assert_eq!(parse_spin("1000000"), Ok(MAX_SPIN_US));
        assert!(parse_spin("1000001").is_err());
        assert!(parse_spin("5ms").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert_eq!(parse_mode("0"), Ok(0));
        assert!(parse_mode("0688").is_err());
        assert!(
            parse_mode("1777")
                .unwrap_err()
                .contains("between 0000 and 0777")
        );
        assert!(parse_mode("").is_err());
        assert!(parse_mode("0o").is_err());
        assert!(parse_mode("-1").is_err());
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("5000M").unwrap_err().contains("too large"));
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("lots").unwrap_err().contains("examples"));
    }

    #[test]
    fn byte_counts_go_past_four_gib() {
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("5000M"), Ok(5000 << 20));
        assert_eq!(parse_bytes("1TiB"), Ok(1 << 40));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(
            parse_bytes("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_bytes("-1").is_err());
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").unwrap_err().contains("examples"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn kinds_are_checked_locally() {
        assert_eq!(parse_kind("mq").unwrap(), Kind::Mq);
        assert_eq!(parse_kind("pipe").unwrap(), Kind::Pipe);
        let e = parse_kind("nope").unwrap_err();
        assert_eq!(e.code(), Some(ipc_client::ErrorCode::UnknownKind));
        assert!(e.to_string().contains("known kinds: mq, pipe, fifo"), "{e}");
    }

    #[test]
    fn ranges_read_as_people_write_them() {
        assert_eq!(parse_priority("0"), Ok(0));
        assert_eq!(parse_priority("32767"), Ok(32767));
        assert_eq!(
            parse_priority("32768").unwrap_err(),
            "the priority must be 0-32767"
        );
        assert!(parse_priority("-1").is_err());
        assert_eq!(parse_count("5"), Ok(5));
        assert_eq!(
            parse_count("0").unwrap_err(),
            "the count must be at least 1"
        );
        assert!(parse_count("many").unwrap_err().contains("at least 1"));
    }
}
