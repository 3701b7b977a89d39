#!/bin/sh
# One-shot init for the dev-mode Vault of docker-compose.yml: the engines edgefl's Vault key adapter uses.
# Dev mode already mounts KV v2 at secret/. Idempotent: re-running on an initialised Vault changes nothing.
set -eu
vault secrets list -format=json | grep -q '"transit/"' || vault secrets enable transit
vault secrets list -format=json | grep -q '"secret/"' || vault secrets enable -path=secret kv-v2
echo "vault ready: transit/ and secret/ (kv-v2) enabled"
