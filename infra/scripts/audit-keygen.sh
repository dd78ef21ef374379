#!/usr/bin/env bash
# Makes the audit checkpoint signing key for `enclave serve --audit-key`:
#   OUT_DIR/audit-signing.key      Ed25519, PKCS#8 v2 (DER) — the front ends only
#   OUT_DIR/audit-signing.key.pub  its public key, hex — publish it to verifiers
#
#   infra/scripts/audit-keygen.sh OUT_DIR
#
# `enclave serve` makes such a key itself on first start when none exists, but
# replicas must share one key made once, outside any server. The server needs
# PKCS#8 v2 (private and public key together, RFC 5958); `openssl genpkey`
# writes v1, so this script re-wraps its seed with the public key.
# Needs bash, openssl and od. Run it on the machine that holds the key, never
# beside the audit log or in the data bucket.
set -euo pipefail

out="${1:?usage: audit-keygen.sh OUT_DIR}"
key="$out/audit-signing.key"
pub="$key.pub"
if [ -e "$key" ] || [ -e "$pub" ]; then
    echo "$key or $pub exists; not overwriting" >&2
    exit 1
fi

umask 077
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

hex() { od -An -v -tx1 | tr -d ' \n'; }

openssl genpkey -algorithm ed25519 -outform DER -out "$tmp/v1.der"
# A v1 Ed25519 key is 48 bytes: a fixed header, then the 32-byte seed.
[ "$(wc -c <"$tmp/v1.der")" -eq 48 ] || { echo "unexpected openssl output" >&2; exit 1; }
seed="$(tail -c 32 "$tmp/v1.der" | hex)"
public="$(openssl pkey -inform DER -in "$tmp/v1.der" -pubout -outform DER | tail -c 32 | hex)"

# SEQUENCE { version 1, AlgorithmIdentifier { 1.3.101.112 },
#            OCTET STRING { OCTET STRING seed }, [1] BIT STRING public key }
der="3053020101300506032b657004220420${seed}a123032100${public}"
printf '%b' "$(printf '%s' "$der" | sed 's/../\\x&/g')" >"$key"
printf '%s' "$public" >"$pub"
chmod 0400 "$key"
chmod 0444 "$pub"
echo "wrote $key (keep secret) and $pub (publish)"
