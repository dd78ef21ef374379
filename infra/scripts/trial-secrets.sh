#!/usr/bin/env bash
# Creates the secret files of the single-host trial (infra/compose.yaml) in
# infra/secrets/, which git ignores (infra/.gitignore) and the image build
# never sees (infra/Dockerfile.dockerignore):
#
#   postgres-password         PostgreSQL password (postgres reads it as a compose secret)
#   state-db.env              ENCLAVE_STATE_DB for the front ends and the opt-out run
#   s3-identities.json        SeaweedFS identities: one per component, least privilege
#   s3-{admin,frontend,ballista,steward}.env   each component's S3 credentials
#   audit-signing.key(.pub)   audit checkpoint key (front ends) and its public key
#   pseudonym.key             the steward's key (ingest and opt-out runs only)
#
#   infra/scripts/trial-secrets.sh
#
# Run it with sudo so the files the enclave containers read can be given to
# uid 10001 with mode 0400 (the others stay with the user who ran sudo);
# otherwise it prints the chown to run. An existing
# file is never overwritten. Trial only: in production the steward brings the
# pseudonymization key from its KMS/HSM custody and the operators create the
# other secrets in their secret store (infra/README.md, "Key custody").
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
dir="$here/secrets"
umask 077
mkdir -p "$dir"

rand_hex() { openssl rand -hex "$1"; }
# Writes stdin to $1 unless it exists.
put() {
    if [ -e "$dir/$1" ]; then
        echo "keeping existing $1"
        cat >/dev/null
    else
        cat >"$dir/$1"
        echo "wrote $1"
    fi
}

data_bucket="enclave-data"
data_prefix="trial"
audit_bucket="enclave-audit"

if [ ! -e "$dir/postgres-password" ]; then
    rand_hex 24 | tr -d '\n' | put postgres-password
fi
password="$(cat "$dir/postgres-password")"
printf 'ENCLAVE_STATE_DB=postgres://enclave:%s@postgres:5432/enclave\n' "$password" | put state-db.env

# One S3 identity per component. SeaweedFS actions: Read/List/Write/Admin,
# optionally scoped to a bucket or to a bucket/prefix/*.
declare -A access secret
for who in admin frontend ballista steward; do
    env_file="s3-$who.env"
    if [ -e "$dir/$env_file" ]; then
        access[$who]="$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$dir/$env_file")"
        secret[$who]="$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$dir/$env_file")"
    else
        access[$who]="$(rand_hex 10 | tr 'a-f' 'A-F')"
        secret[$who]="$(rand_hex 20)"
    fi
    printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "${access[$who]}" "${secret[$who]}" | put "$env_file"
done

put s3-identities.json <<JSON
{
  "identities": [
    {
      "name": "admin",
      "credentials": [{"accessKey": "${access[admin]}", "secretKey": "${secret[admin]}"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    },
    {
      "name": "frontend",
      "credentials": [{"accessKey": "${access[frontend]}", "secretKey": "${secret[frontend]}"}],
      "actions": [
        "Read:$data_bucket", "List:$data_bucket",
        "Write:$data_bucket/$data_prefix/workspaces/*",
        "Read:$audit_bucket", "List:$audit_bucket", "Write:$audit_bucket"
      ]
    },
    {
      "name": "ballista",
      "credentials": [{"accessKey": "${access[ballista]}", "secretKey": "${secret[ballista]}"}],
      "actions": ["Read:$data_bucket", "List:$data_bucket"]
    },
    {
      "name": "steward",
      "credentials": [{"accessKey": "${access[steward]}", "secretKey": "${secret[steward]}"}],
      "actions": [
        "Read:$data_bucket", "List:$data_bucket",
        "Write:$data_bucket/$data_prefix/releases/*"
      ]
    }
  ]
}
JSON

if [ ! -e "$dir/audit-signing.key" ]; then
    "$here/scripts/audit-keygen.sh" "$dir"
else
    echo "keeping existing audit-signing.key"
fi
# 32 random bytes as 64 hex characters (the form `enclave demo` makes).
if [ ! -e "$dir/pseudonym.key" ]; then
    rand_hex 32 | tr -d '\n' | put pseudonym.key
fi

# Files read inside containers that run as uid 10001 (compose bind-mounts
# secret files with their host owner and mode).
enclave_files=(audit-signing.key audit-signing.key.pub pseudonym.key)
if [ "$(id -u)" -eq 0 ]; then
    # Under sudo, the rest (env files read by `docker compose` itself) goes
    # to the user who ran sudo.
    if [ -n "${SUDO_UID:-}" ]; then
        chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$dir" "$dir"/*
    fi
    for f in "${enclave_files[@]}"; do
        chown 10001:10001 "$dir/$f"
        chmod 0400 "$dir/$f"
    done
    chmod 0444 "$dir/audit-signing.key.pub"
else
    echo
    echo "Give the enclave containers (uid 10001) their files:"
    echo "  sudo chown 10001:10001 ${enclave_files[*]/#/$dir/}"
    echo "  sudo chmod 0400 ${enclave_files[*]/#/$dir/}"
    echo "  sudo chmod 0444 $dir/audit-signing.key.pub"
fi
echo
echo "Publish the audit public key to the verifiers: $(cat "$dir/audit-signing.key.pub")"
