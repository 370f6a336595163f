//! A backup source as the host sees it: what it is asked and what it
//! answers, in the host's own types. The WebAssembly contract's types stay
//! inside `plugin/`, which converts them (`plugin/versions/current.rs`); the
//! clone and wal-restore work with these, whatever contract version a plugin
//! was built against. Everything a source answers is untrusted until the
//! host checked it (`clone/steps/`: each kind of plan step in
//! `clone/steps/kinds/`; `walrestore/archive.rs`).

use crate::contract::{Described, PluginFailure};

/// A loaded backup source: its facts, and sessions that call it.
pub trait SourcePlugin: Described {
    /// A fresh session, with the host calls' environment the clone made.
    fn open(&self) -> Result<Box<dyn BackupSource>, PluginFailure>;
}

/// What a backup source does for the host.
pub trait BackupSource {
    /// The backup it would restore for `req`, checked to be usable.
    fn check(&mut self, req: &CloneRequest) -> Result<Backup, PluginFailure>;
    /// The steps that restore `backup` into the request's data directory.
    fn plan_clone(
        &mut self,
        req: &CloneRequest,
        backup: &Backup,
    ) -> Result<Vec<PlanStep>, PluginFailure>;
    /// Where its WAL is, said once; neither field set: ask per file.
    fn wal_archive(&mut self) -> Result<WalArchive, PluginFailure>;
    /// Where one WAL file (`name`) is.
    fn wal_location(&mut self, name: &str) -> Result<WalLocation, PluginFailure>;
}

/// One connection parameter (a libpq keyword and its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParam {
    pub key: String,
    pub value: String,
}

/// A tablespace: its OID, name and location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    pub oid: u32,
    pub name: String,
    pub location: String,
}

/// The node being cloned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_id: Option<u32>,
    pub node_name: String,
}

/// What a source is asked to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRequest {
    pub node: NodeIdentity,
    pub data_directory: String,
    /// The upstream's connection parameters (never a password).
    pub upstream: Vec<ConnParam>,
    pub replication_user: Option<String>,
    pub upstream_version: Option<u32>,
    pub upstream_system_identifier: Option<String>,
    pub upstream_tablespaces: Vec<Tablespace>,
    pub backup_id: Option<String>,
    pub fast_checkpoint: bool,
    pub slot_name: Option<String>,
    /// Standard error is a terminal.
    pub interactive: bool,
    /// Where each tablespace will live here (since 1.3.0); filled for
    /// `plan_clone` only.
    pub placed_tablespaces: Vec<PlacedTablespace>,
}

/// A tablespace's local location, after `tablespace_mapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedTablespace {
    pub oid: u32,
    pub location: String,
}

/// How a backup's files are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupFormat {
    Plain,
    Tar,
}

/// A base backup a source found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub id: String,
    pub system_identifier: String,
    pub server_version: u32,
    pub timeline: u32,
    pub begin_wal: String,
    pub end_wal: String,
    pub begin_lsn: String,
    pub end_lsn: String,
    /// 0 when unknown.
    pub size_bytes: u64,
    pub tablespaces: Vec<Tablespace>,
    pub format: BackupFormat,
    pub compression: Option<String>,
}

/// Which of the clone's directories a path is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRoot {
    DataDirectory,
    Tablespace(u32),
    Staging,
}

/// A path under one of the clone's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPath {
    pub root: PathRoot,
    pub path: String,
}

/// A local program the plan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLocalStep {
    pub program: String,
    pub args: Vec<String>,
    pub uses_upstream_password: bool,
    pub description: String,
}

/// Files copied from a remote directory with rsync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyTreeStep {
    pub target: String,
    pub remote_path: String,
    pub local: LocalPath,
    pub files: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDirStep {
    pub path: LocalPath,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFileStep {
    pub path: LocalPath,
    pub contents: String,
    pub mode: u32,
}

/// How a tar archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveCompression {
    Gzip,
    Lz4,
    Zstd,
    Bzip2,
    Snappy,
    Xz,
}

/// A remote tar archive streamed and unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackArchiveStep {
    pub target: String,
    pub remote_path: String,
    pub compression: Option<ArchiveCompression>,
    pub local: LocalPath,
    pub size_bytes: u64,
}

/// An incremental chain (oldest first) combined into the data directory.
/// How the objects of an [`UnpackObjectsStep`] make up archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectParts {
    /// Each object is a whole archive.
    Separate,
    /// The objects are consecutive pieces of one archive.
    Joined,
}

/// Download objects of a store and unpack them (since 1.3.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackObjectsStep {
    pub store: String,
    pub objects: Vec<String>,
    pub parts: ObjectParts,
    pub compression: Option<ArchiveCompression>,
    pub local: LocalPath,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombineBackupsStep {
    pub backups: Vec<LocalPath>,
}

/// One step of a source's plan, as it asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStep {
    RunLocal(RunLocalStep),
    CopyTree(CopyTreeStep),
    CreateDir(CreateDirStep),
    WriteFile(WriteFileStep),
    UnpackArchive(UnpackArchiveStep),
    CombineBackups(CombineBackupsStep),
    UnpackObjects(UnpackObjectsStep),
}

/// Where one WAL file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalLocation {
    RemoteFile(RemoteWalFile),
    RemoteCommand(RemoteWalCommand),
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWalFile {
    pub target: String,
    pub path: String,
    pub compression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWalCommand {
    pub target: String,
    pub argv: Vec<String>,
}

/// Where a source's WAL is, said once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalArchive {
    pub directory: Option<WalDirectory>,
    pub fetch: Option<WalFetchCommand>,
    /// A prefix of an object store (since 1.3.0); preferred to `directory`.
    pub store: Option<WalStore>,
}

/// Archived WAL in an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalStore {
    pub store: String,
    pub prefix: String,
    pub layout: WalLayout,
    /// Endings to try in order, with the compression of each.
    pub suffixes: Vec<(String, Option<ArchiveCompression>)>,
}

/// How WAL files are laid out in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalLayout {
    Flat,
    /// Barman's: a subdirectory per log (the name's first 16 characters).
    ByLog,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalDirectory {
    pub target: String,
    pub path: String,
    pub layout: WalLayout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFetchCommand {
    /// Where it runs; none: on this host.
    pub target: Option<String>,
    pub argv: Vec<String>,
    pub partial_argv: Option<Vec<String>>,
    pub missing_status: Option<u8>,
}
