//! The AWS shared files as boto3 reads them: `~/.aws/credentials`
//! (`AWS_SHARED_CREDENTIALS_FILE`), sections `[NAME]`, and `~/.aws/config`
//! (`AWS_CONFIG_FILE`), sections `[profile NAME]` and `[default]`; INI with
//! `#`/`;` comments; indented lines continue a nested value (skipped).

use std::collections::BTreeMap;

use super::secret::Secret;

/// What one profile holds, from both files (the credentials file first).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Profile {
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub region: Option<String>,
    /// Other settings that provide credentials (`role_arn`, `sso_*`,
    /// `credential_process`, ...), which pgclone does not follow.
    pub indirect: Vec<String>,
}

type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// Sections of an INI text, keys lowercased, values trimmed.
fn parse_ini(text: &str) -> Sections {
    let mut out = Sections::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.get_mut(section)
                .expect("section inserted")
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// Profile `name` from the texts of the credentials and config files;
/// `None` when neither has it.
pub(crate) fn profile(
    name: &str,
    credentials: Option<&str>,
    config: Option<&str>,
) -> Option<Profile> {
    let creds = credentials.map(parse_ini).unwrap_or_default();
    let conf = config.map(parse_ini).unwrap_or_default();
    let from_creds = creds.get(name);
    let config_name = format!("profile {name}");
    let from_conf = conf
        .get(&config_name)
        .or_else(|| (name == "default").then(|| conf.get("default")).flatten());
    if from_creds.is_none() && from_conf.is_none() {
        return None;
    }
    let get = |key: &str| {
        from_creds
            .and_then(|s| s.get(key))
            .or_else(|| from_conf.and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let mut indirect: Vec<String> = [from_creds, from_conf]
        .into_iter()
        .flatten()
        .flat_map(|s| s.keys())
        .filter(|k| {
            matches!(
                k.as_str(),
                "role_arn" | "source_profile" | "credential_process" | "web_identity_token_file"
            ) || k.starts_with("sso_")
        })
        .cloned()
        .collect();
    indirect.sort();
    indirect.dedup();
    Some(Profile {
        access_key_id: get("aws_access_key_id").map(Secret::new),
        secret_access_key: get("aws_secret_access_key").map(Secret::new),
        session_token: get("aws_session_token").map(Secret::new),
        region: from_conf.and_then(|s| s.get("region")).cloned(),
        indirect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: &str = "\
# comment
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = secretdefault

[backup]
aws_access_key_id=AKIBACKUP
aws_secret_access_key=secret=with=equals
aws_session_token = tok
; other comment
";
    const CONFIG: &str = "\
[default]
region = eu-west-1
[profile backup]
region = eu-central-1
s3 =
    addressing_style = path
[profile sso]
sso_start_url = https://example.awsapps.com/start
region = us-west-2
";

    #[test]
    fn reads_profiles_as_boto3_does() {
        let p = profile("backup", Some(CREDS), Some(CONFIG)).unwrap();
        assert_eq!(p.access_key_id.unwrap().expose(), "AKIBACKUP");
        assert_eq!(p.secret_access_key.unwrap().expose(), "secret=with=equals");
        assert_eq!(p.session_token.unwrap().expose(), "tok");
        assert_eq!(p.region.as_deref(), Some("eu-central-1"));
        assert!(p.indirect.is_empty());

        let d = profile("default", Some(CREDS), Some(CONFIG)).unwrap();
        assert_eq!(d.access_key_id.unwrap().expose(), "AKIDEFAULT");
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert!(d.session_token.is_none());

        let s = profile("sso", Some(CREDS), Some(CONFIG)).unwrap();
        assert!(s.access_key_id.is_none());
        assert_eq!(s.indirect, vec!["sso_start_url".to_string()]);
        assert_eq!(s.region.as_deref(), Some("us-west-2"));

        assert!(profile("missing", Some(CREDS), Some(CONFIG)).is_none());
        assert!(profile("default", None, None).is_none());
    }

    #[test]
    fn debug_never_shows_keys() {
        let p = profile("backup", Some(CREDS), None).unwrap();
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("AKIBACKUP") && !dbg.contains("secret=with"),
            "{dbg}"
        );
    }
}
