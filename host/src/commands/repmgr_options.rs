//! repmgr's options that belong to its other commands: given to pgclone, an
//! error says which repmgr commands take them (clap would suggest passing
//! them as a value after `--`, which is never what was meant).

/// (option, the repmgr commands that take it), from repmgr 5's documentation.
const OTHER_COMMANDS: &[(&str, &str)] = &[
    (
        "node-id",
        "repmgr standby unregister, primary unregister, witness unregister, cluster event",
    ),
    ("node-name", "repmgr cluster event"),
    ("wait", "repmgr standby follow"),
    ("wait-start", "repmgr standby register"),
    ("wait-sync", "repmgr standby register"),
    ("force-rewind", "repmgr node rejoin"),
    ("config-files", "repmgr node rejoin"),
    ("siblings-follow", "repmgr standby switchover"),
    ("always-promote", "repmgr standby switchover"),
    ("repmgrd-no-pause", "repmgr standby switchover"),
    ("repmgrd-force-unpause", "repmgr standby switchover"),
    ("csv", "repmgr cluster show, node status"),
    ("compact", "repmgr cluster show"),
    ("event", "repmgr cluster event"),
    ("limit", "repmgr cluster event"),
];

/// The repmgr commands that take `--option` (as given, `--x` or `--x=v`),
/// when it is one of repmgr's options pgclone does not implement.
pub fn taken_by(option: &str) -> Option<&'static str> {
    let name = option.strip_prefix("--")?.split('=').next()?;
    OTHER_COMMANDS
        .iter()
        .find(|(o, _)| *o == name)
        .map(|(_, by)| *by)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_repmgr_commands_of_an_option() {
        assert_eq!(
            super::taken_by("--force-rewind=/usr/bin/pg_rewind"),
            Some("repmgr node rejoin")
        );
        assert!(super::taken_by("--node-id").is_some());
        assert_eq!(super::taken_by("--no-such"), None);
        assert_eq!(super::taken_by("-w"), None);
    }
}
