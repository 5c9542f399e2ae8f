//! The command line, parsed in one place: `plangate [serve | migrate | trigger … | reconcile … |
//! inbox … | check | backup …]` (README, "Command line"). A hand parser rather than clap: the
//! release build stays lean, and every rule is a unit test here. `main` only dispatches.

use std::path::PathBuf;

use crate::billing::Payer;

pub const USAGE: &str =
    "usage: plangate [serve | migrate | trigger <event-type> … | reconcile … | usage … | audit … | inbox … | check | backup <file>]
  reconcile --user ID | --org ID | --all
      compares the database with Clerk's Backend API and corrects what drifted
  usage --user ID | --org ID
      the payer's metered features this period: <feature> <used>/<limit> <start>..<end>
  audit [--limit N]
      the operator console's audit log, newest first: <time> <operator> <action> <target> <result>
  inbox list [--failed] [--limit N]
      the newest deliveries: <svix_id> <event type> <outcome> <received>
  inbox replay <svix_id>... | --failed
      applies stored deliveries again (ordering and exactly-once side effects included)
  check
      the launch preflight: settings, Clerk keys, JWKS, plan slugs, database; exit 1 on a FAIL
  backup <file>
      a consistent copy of the SQLite database, safe while serve runs
  trigger <event-type> [--url URL] [--secret whsec_…] [--user ID] [--email ADDR] [--org ID]
          [--plan SLUG] [--item ID] [--repeat N] [--shuffle] | --list
      sends one signed Clerk-shaped event (the secret defaults to the configured one)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve,
    Migrate,
    Trigger(TriggerArgs),
    /// `None`: the whole sweep.
    Reconcile(Option<Payer>),
    Usage(Payer),
    /// The newest `limit` audit rows.
    Audit(i64),
    InboxList {
        failed: bool,
        limit: i64,
    },
    /// `None`: every dead letter.
    InboxReplay(Option<Vec<String>>),
    Check,
    Backup(PathBuf),
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerArgs {
    pub event_type: Option<String>,
    pub url: String,
    pub secret: Option<String>,
    pub user: String,
    pub email: Option<String>,
    pub org: Option<String>,
    pub plan: String,
    pub item: Option<String>,
    pub repeat: u32,
    pub shuffle: bool,
    pub list: bool,
}

impl Default for TriggerArgs {
    fn default() -> Self {
        TriggerArgs {
            event_type: None,
            url: "http://127.0.0.1:3000/api/webhooks/clerk".into(),
            secret: None,
            user: "user_demo_alice".into(),
            email: None,
            org: None,
            plan: "pro".into(),
            item: None,
            repeat: 1,
            shuffle: false,
            list: false,
        }
    }
}

/// The command `args` (without the program name) ask for; the error says what is wrong.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let rest = args.get(1..).unwrap_or_default();
    let strs: Vec<&str> = rest.iter().map(String::as_str).collect();
    match args.first().map(String::as_str) {
        None => Ok(Command::Serve),
        Some("serve") if rest.is_empty() => Ok(Command::Serve),
        Some("migrate") if rest.is_empty() => Ok(Command::Migrate),
        Some("check") if rest.is_empty() => Ok(Command::Check),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("trigger") => trigger(rest).map(Command::Trigger),
        Some("reconcile") => match strs.as_slice() {
            ["--all"] => Ok(Command::Reconcile(None)),
            [flag @ ("--user" | "--org"), id] => {
                payer(flag, id).map(|p| Command::Reconcile(Some(p)))
            }
            _ => Err("usage: plangate reconcile --user ID | --org ID | --all".into()),
        },
        Some("usage") => match strs.as_slice() {
            [flag @ ("--user" | "--org"), id] => payer(flag, id).map(Command::Usage),
            _ => Err("usage: plangate usage --user ID | --org ID".into()),
        },
        Some("audit") => match strs.as_slice() {
            [] => Ok(Command::Audit(50)),
            ["--limit", n] => n
                .parse()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .map(Command::Audit)
                .ok_or_else(|| "--limit takes a number from 1 to 100000".to_string()),
            _ => Err("usage: plangate audit [--limit N]".into()),
        },
        Some("inbox") => inbox(&strs),
        Some("backup") => match strs.as_slice() {
            [file] if !file.starts_with("--") => Ok(Command::Backup(PathBuf::from(file))),
            _ => Err("usage: plangate backup <file>".into()),
        },
        Some(c @ ("serve" | "migrate" | "check")) => {
            Err(format!("`{c}` takes no arguments; try `plangate --help`"))
        }
        Some(other) => Err(format!("unknown command `{other}`; try `plangate --help`")),
    }
}

/// The payer `--user ID` / `--org ID` names.
fn payer(flag: &str, id: &str) -> Result<Payer, String> {
    Payer::from_parts(flag.trim_start_matches("--"), id).map_err(|e| e.to_string())
}

fn inbox(args: &[&str]) -> Result<Command, String> {
    let usage = || {
        "usage: plangate inbox list [--failed] [--limit N] | plangate inbox replay <svix_id>... | --failed"
            .to_string()
    };
    match args {
        ["list", flags @ ..] => {
            let (mut failed, mut limit) = (false, 50i64);
            let mut it = flags.iter();
            while let Some(a) = it.next() {
                match *a {
                    "--failed" => failed = true,
                    "--limit" => {
                        limit = it
                            .next()
                            .and_then(|n| n.parse().ok())
                            .filter(|n| *n > 0)
                            .ok_or("--limit takes a number above 0")?
                    }
                    _ => return Err(usage()),
                }
            }
            Ok(Command::InboxList { failed, limit })
        }
        ["replay", "--failed"] => Ok(Command::InboxReplay(None)),
        ["replay", ids @ ..] if !ids.is_empty() && !ids.iter().any(|a| a.starts_with("--")) => Ok(
            Command::InboxReplay(Some(ids.iter().map(|s| s.to_string()).collect())),
        ),
        _ => Err(usage()),
    }
}

fn trigger(args: &[String]) -> Result<TriggerArgs, String> {
    let mut a = TriggerArgs::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--url" => a.url = value("--url")?,
            "--secret" => a.secret = Some(value("--secret")?),
            "--user" => a.user = value("--user")?,
            "--email" => a.email = Some(value("--email")?),
            "--org" => a.org = Some(value("--org")?),
            "--plan" => a.plan = value("--plan")?,
            "--item" => a.item = Some(value("--item")?),
            "--repeat" => {
                a.repeat = value("--repeat")?
                    .parse()
                    .map_err(|_| "--repeat takes a number".to_string())?
            }
            "--shuffle" => a.shuffle = true,
            "--list" => a.list = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            s => a.event_type = Some(s.to_string()),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    #[test]
    fn every_command_parses_and_nothing_else_does() {
        assert_eq!(p(""), Ok(Command::Serve));
        assert_eq!(p("serve"), Ok(Command::Serve));
        assert_eq!(p("migrate"), Ok(Command::Migrate));
        assert_eq!(p("check"), Ok(Command::Check));
        assert_eq!(p("--help"), Ok(Command::Help));
        assert_eq!(p("help"), Ok(Command::Help));
        assert_eq!(p("-h"), Ok(Command::Help));
        assert_eq!(p("reconcile --all"), Ok(Command::Reconcile(None)));
        assert_eq!(
            p("usage --org org_1"),
            Ok(Command::Usage(Payer::org("org_1")))
        );
        assert_eq!(
            p("usage --user user_1"),
            Ok(Command::Usage(Payer::user("user_1")))
        );
        assert_eq!(p("audit"), Ok(Command::Audit(50)));
        assert_eq!(p("audit --limit 7"), Ok(Command::Audit(7)));
        assert_eq!(p("audit --limit 100000"), Ok(Command::Audit(100_000)));
        assert_eq!(
            p("reconcile --user user_1"),
            Ok(Command::Reconcile(Some(Payer::user("user_1"))))
        );
        assert_eq!(
            p("reconcile --org org_1"),
            Ok(Command::Reconcile(Some(Payer::org("org_1"))))
        );
        assert_eq!(
            p("inbox list"),
            Ok(Command::InboxList {
                failed: false,
                limit: 50
            })
        );
        assert_eq!(
            p("inbox list --limit 3 --failed"),
            Ok(Command::InboxList {
                failed: true,
                limit: 3
            })
        );
        assert_eq!(p("inbox replay --failed"), Ok(Command::InboxReplay(None)));
        assert_eq!(
            p("inbox replay msg_1 msg_2"),
            Ok(Command::InboxReplay(Some(vec![
                "msg_1".into(),
                "msg_2".into()
            ])))
        );
        assert_eq!(
            p("backup /tmp/x.db"),
            Ok(Command::Backup("/tmp/x.db".into()))
        );
        for bad in [
            "serve now",
            "migrate --force",
            "check x",
            "reconcile",
            "reconcile --user",
            "reconcile --everyone",
            "reconcile --all --user x",
            "usage",
            "usage --all",
            "usage --user",
            "usage --user a --org b",
            "usage --org ../x",
            "reconcile --user user_1/../x",
            "inbox",
            "audit --limit 0",
            "audit --limit -1",
            "audit --limit 100001",
            "audit --limit x",
            "audit --limit",
            "audit 5",
            "audit --all",
            "inbox list --limit 0",
            "inbox list --limit x",
            "inbox list --limit",
            "inbox list --other",
            "inbox replay",
            "inbox replay --failed msg_1",
            "inbox replay msg_1 --failed",
            "backup",
            "backup a b",
            "backup --force",
            "frobnicate",
            "trigger --bogus",
            "trigger --repeat x",
            "trigger --url",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trigger_takes_its_options_with_defaults() {
        let Ok(Command::Trigger(a)) = p("trigger subscriptionItem.active --user user_9 --plan max --repeat 3 --shuffle --secret whsec_x --url http://h/x --email e@x --org org_1 --item i_1")
        else {
            panic!("trigger parses")
        };
        assert_eq!(a.event_type.as_deref(), Some("subscriptionItem.active"));
        assert_eq!(
            (a.user.as_str(), a.plan.as_str(), a.repeat),
            ("user_9", "max", 3)
        );
        assert!(a.shuffle && !a.list);
        assert_eq!(a.secret.as_deref(), Some("whsec_x"));
        assert_eq!(a.url, "http://h/x");
        assert_eq!(a.email.as_deref(), Some("e@x"));
        assert_eq!(a.org.as_deref(), Some("org_1"));
        assert_eq!(a.item.as_deref(), Some("i_1"));
        let Ok(Command::Trigger(d)) = p("trigger --list") else {
            panic!()
        };
        assert_eq!(
            d,
            TriggerArgs {
                list: true,
                ..TriggerArgs::default()
            }
        );
    }
}
