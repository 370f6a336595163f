//! PostgreSQL server versions as `server_version_num` gives them
//! (`150004` is 15.4, `90624` is 9.6.24): the contract's own rules, the same
//! the host applies (`pgclone-contract`).

pub use pgclone_contract::pg_version::*;
