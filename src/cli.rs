//! Command-line interface: `run`, `crds`, `access`, `review`, `approve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "liaison", version, about = "Delegated, revocable partner access to client namespaces")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller (kubeconfig or in-cluster credentials).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions, or write one file per CRD into a directory.
    Crds {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show the current access: who can reach which client, through which level, until when.
    Access(AccessArgs),
    /// List the reviews due (links of a client, or grants of a partner), or review one in your
    /// own name.
    Review(ReviewArgs),
    /// Approve (or deny) a partner's request for an on-request level, in your own name, as one
    /// of the approvers the client's link names.
    Approve(ApproveArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The ClusterRole that bounds every access level.
    #[arg(long, env = "LIAISON_CEILING", default_value = "liaison-access-ceiling")]
    pub ceiling: String,
    /// ClientLinks (which write and remove access) and Partners reconciled at once;
    /// AccessGrants, which only report, at a quarter of it.
    #[arg(long, env = "LIAISON_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// The period in which every object is reconciled again anyway (each once, spread evenly
    /// over the period), in seconds.
    #[arg(long, env = "LIAISON_RESYNC", value_parser = parse_seconds, default_value = "600")]
    pub resync: Duration,
    /// How often objects whose owner no longer exists are swept, in seconds.
    #[arg(long, env = "LIAISON_SWEEP_INTERVAL", value_parser = parse_seconds, default_value = "300")]
    pub sweep_interval: Duration,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "LIAISON_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Use a Lease so that only one replica reconciles.
    #[arg(long, env = "LIAISON_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    #[arg(long, env = "LIAISON_LEASE_NAME", default_value = "liaison")]
    pub lease_name: String,
    /// Namespace of the Lease; defaults to the pod's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// How long a lease lasts without renewal; a standby takes over after it.
    #[arg(long, env = "LIAISON_LEASE_DURATION", value_parser = parse_seconds, default_value = "15")]
    pub lease_duration: Duration,
    /// The API server URL written into access key kubeconfigs (default: the one Liaison uses).
    #[arg(long, env = "LIAISON_ACCESS_KEY_SERVER")]
    pub access_key_server: Option<String>,
    /// Lifetime of an access key token, in seconds; refreshed after two thirds of it.
    #[arg(long, env = "LIAISON_ACCESS_KEY_TTL", value_parser = parse_seconds, default_value = "3600")]
    pub access_key_ttl: Duration,
    /// The operator's own ServiceAccount (in the lease namespace). With --home-access-role, the
    /// operator binds itself to that ClusterRole in each partner home namespace, and so needs
    /// no Secret access anywhere else.
    #[arg(long, env = "LIAISON_SERVICE_ACCOUNT", requires = "home_access_role")]
    pub service_account: Option<String>,
    /// ClusterRole granting access key Secrets in one namespace (bound per home namespace).
    #[arg(long, env = "LIAISON_HOME_ACCESS_ROLE", requires = "service_account")]
    pub home_access_role: Option<String>,
    #[arg(long, env = "LIAISON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Serve the ClientLink admission webhook (HTTPS) here: a link's author must hold what its
    /// inline levels delegate.
    #[arg(long, env = "LIAISON_ADMISSION_ADDR")]
    pub admission_addr: Option<SocketAddr>,
    /// The webhook's serving certificate and key (`tls.crt`, `tls.key`).
    #[arg(long, env = "LIAISON_ADMISSION_CERT_DIR", default_value = "/etc/liaison/admission")]
    pub admission_cert_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct AccessArgs {
    /// As the partner sees it: every grant of this Partner.
    #[arg(long, conflicts_with = "client", required_unless_present = "client")]
    pub partner: Option<String>,
    /// As the client sees it: every access into this namespace.
    #[arg(long)]
    pub client: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Args, Debug, Clone)]
pub struct ReviewArgs {
    /// The partner's grants (as one of its admins).
    #[arg(long, conflicts_with = "client", required_unless_present = "client")]
    pub partner: Option<String>,
    /// The ClientLinks of this namespace (as its admin).
    #[arg(long)]
    pub client: Option<String>,
    /// Review this ClientLink or AccessGrant now, in your own name; without it, list.
    pub name: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Args, Debug, Clone)]
pub struct ApproveArgs {
    /// The client namespace asked.
    #[arg(long)]
    pub client: String,
    /// The request, `namespace/name` or its name, as the link's status lists it.
    pub request: String,
    /// Deny it rather than approve it.
    #[arg(long)]
    pub deny: bool,
    /// Why, for the record.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let digits = text.trim_end_matches('s');
    digits.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("{text:?} is not a number of seconds"))
}
