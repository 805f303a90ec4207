//! Watch schedules: cron expressions in UTC (five fields, or six with seconds first), parsed
//! once here so configuration, API and scheduler agree on what is valid and when it fires.

/// Parses a cron expression (UTC): five fields (minute precision) or six (seconds first).
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six_fields(expr))
        .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

/// The six-field form of a schedule (what the scheduler takes).
pub fn six_fields(expr: &str) -> String {
    let expr = expr.trim();
    if expr.split_whitespace().count() == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    }
}

/// The first time after `after_ms` (Unix ms) that `expr` fires, in Unix ms.
pub fn next_after(expr: &str, after_ms: i64) -> Option<i64> {
    let cron = parse_schedule(expr).ok()?;
    // Whole seconds: the occurrence keeps the start's fraction otherwise.
    let at = chrono::DateTime::from_timestamp(after_ms.div_euclid(1000), 0)?;
    cron.find_next_occurrence(&at, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_five_or_six_fields() {
        assert!(parse_schedule("*/5 * * * *").is_ok());
        assert!(parse_schedule("*/2 * * * * *").is_ok());
        assert!(parse_schedule("every day").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
        let t = next_after("0 */6 * * *", 0).unwrap();
        assert_eq!(t, 6 * 3600 * 1000);
        assert_eq!(next_after("*/2 * * * * *", 1000), Some(2000));
        assert_eq!(next_after("*/2 * * * * *", 2467), Some(4000));
    }
}
