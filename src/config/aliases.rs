//! Settings under the names (and units) they had before: each is read only when its new name
//! is not set, and converted to the new unit. Kept because deployed settings use them; the
//! table of them is in `docs/configuration.md#older-names`.

use clap::{parser::ValueSource, ArgMatches, Args};

use super::values::{bad, ConfigError};
use super::Config;

#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Older names")]
pub struct Aliases {
    /// Older name of CONTEXT_TTL_SECS, in hours.
    #[arg(
        long,
        env = "CONTEXT_TTL_HOURS",
        value_name = "CONTEXT_TTL_HOURS",
        hide = true
    )]
    pub context_ttl_hours: Option<u64>,
    /// Older name of LOCK_FENCE_KEEP_SECS, in days.
    #[arg(
        long,
        env = "LOCK_FENCE_KEEP_DAYS",
        value_name = "LOCK_FENCE_KEEP_DAYS",
        hide = true
    )]
    pub lock_fence_keep_days: Option<u64>,
    /// Older name of USAGE_DAY_KEEP_SECS, in days.
    #[arg(
        long,
        env = "USAGE_DAY_KEEP_DAYS",
        value_name = "USAGE_DAY_KEEP_DAYS",
        hide = true
    )]
    pub usage_day_keep_days: Option<u64>,
    /// Older name of USAGE_MONTH_KEEP_SECS, in days.
    #[arg(
        long,
        env = "USAGE_MONTH_KEEP_DAYS",
        value_name = "USAGE_MONTH_KEEP_DAYS",
        hide = true
    )]
    pub usage_month_keep_days: Option<u64>,
}

/// (older variable, its value, its unit in seconds, the new setting's clap id and variable,
/// where the new value goes).
type Alias<'a> = (
    &'static str,
    Option<u64>,
    u64,
    &'static str,
    &'static str,
    &'a mut u64,
);

impl Config {
    /// Reads every setting from the flags and the environment, older names included.
    pub fn from_env() -> Result<Config, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Config::command().try_get_matches()?;
        let mut config = Config::from_arg_matches(&matches)?;
        config
            .take_aliases(&matches)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e))?;
        Ok(config)
    }

    /// Puts each older name's value, converted, into its new setting when that was not set
    /// itself; both set is an error.
    pub fn take_aliases(&mut self, matches: &ArgMatches) -> Result<(), ConfigError> {
        let a = self.aliases.clone();
        let s = &mut self.services;
        let aliases: [Alias<'_>; 4] = [
            (
                "CONTEXT_TTL_HOURS",
                a.context_ttl_hours,
                3600,
                "context_ttl_secs",
                "CONTEXT_TTL_SECS",
                &mut s.context_ttl_secs,
            ),
            (
                "LOCK_FENCE_KEEP_DAYS",
                a.lock_fence_keep_days,
                86_400,
                "lock_fence_keep_secs",
                "LOCK_FENCE_KEEP_SECS",
                &mut s.lock_fence_keep_secs,
            ),
            (
                "USAGE_DAY_KEEP_DAYS",
                a.usage_day_keep_days,
                86_400,
                "usage_day_keep_secs",
                "USAGE_DAY_KEEP_SECS",
                &mut s.usage_day_keep_secs,
            ),
            (
                "USAGE_MONTH_KEEP_DAYS",
                a.usage_month_keep_days,
                86_400,
                "usage_month_keep_secs",
                "USAGE_MONTH_KEEP_SECS",
                &mut s.usage_month_keep_secs,
            ),
        ];
        for (old, value, unit, id, new, slot) in aliases {
            let Some(v) = value else { continue };
            if matches.value_source(id) != Some(ValueSource::DefaultValue) {
                return Err(bad(
                    old,
                    format!("set {new} or its older name {old}, not both"),
                ));
            }
            *slot = v
                .checked_mul(unit)
                .ok_or_else(|| bad(old, "is too large"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        use clap::{CommandFactory, FromArgMatches};
        let cmd = Config::command().mut_args(|a| a.env(None));
        let m = cmd.try_get_matches_from(args).unwrap();
        let mut c = Config::from_arg_matches(&m).unwrap();
        c.take_aliases(&m).map(|()| c)
    }

    #[test]
    fn older_names_count_in_their_units_unless_the_new_one_is_set() {
        let c = parse(&[
            "afw-gateway",
            "--context-ttl-hours",
            "2",
            "--usage-day-keep-days",
            "3",
        ])
        .unwrap();
        assert_eq!(c.services.context_ttl_secs, 7200);
        assert_eq!(c.services.usage_day_keep_secs, 3 * 86_400);
        assert_eq!(c.services.lock_fence_keep_secs, 30 * 86_400, "untouched");
        let both = parse(&[
            "afw-gateway",
            "--context-ttl-hours",
            "2",
            "--context-ttl-secs",
            "60",
        ]);
        assert_eq!(both.unwrap_err().var, "CONTEXT_TTL_HOURS");
        let c = parse(&["afw-gateway", "--context-ttl-secs", "60"]).unwrap();
        assert_eq!(c.services.context_ttl_secs, 60);
    }
}
