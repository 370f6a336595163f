//! PostgreSQL connections the way libpq makes them: conninfo strings and URIs,
//! the PG* environment, service files and password files, so that a site's
//! `.pgpass` works for pgclone exactly as it does for pg_basebackup.

pub mod client;
pub mod conninfo;
pub mod libpq;
pub mod passfile;
pub mod tls;

pub use conninfo::ConnInfo;
pub use libpq::Resolved;
