//! PostgreSQL connections the way libpq makes them: conninfo strings and URIs,
//! the PG* environment, service files and password files, so that a site's
//! `.pgpass` works for pgclone exactly as it does for pg_basebackup.

pub mod cert_names;
pub mod client;
pub mod libpq;
pub mod passfile;
pub mod tls;

// One reading of conninfo for the host and the plugin SDK: the contract's.
pub use libpq::Resolved;
pub use pgclone_contract::conninfo::ConnInfo;
