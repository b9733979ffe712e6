//! Telling whether a pid is still the process we started (pids are reused).

/// Start time (clock ticks since boot) of a live, non-zombie process.
pub(crate) fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the
    // last ')'. Then field 3 is the state and field 22 the start time.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether `pid` is alive and is the process that started at `ticks`.
pub(crate) fn is_same_process(pid: i32, ticks: u64) -> bool {
    start_ticks(pid) == Some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_stable() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let ticks = start_ticks(pid).unwrap();
        assert!(is_same_process(pid, ticks));
        assert!(!is_same_process(pid, ticks + 1));
    }

    #[test]
    fn a_missing_pid_is_not_alive() {
        assert_eq!(start_ticks(i32::MAX), None);
    }
}
