#!/bin/sh
# Writes the Mosquitto ACL for edgefl's external-broker mode: the gateway block of acl.template, then one block per
# device. Input on stdin: one "<tenant> <device>" per line (e.g. from the registry's device list).
#   printf 'acme pos-1\nacme pos-2\n' | ./gen-acl.sh > acl
set -eu
here=$(dirname "$0")
sed -n '1,/^# ── one block per device/p' "$here/acl.template" | sed '$d'
while read -r tenant device; do
  [ -n "${tenant:-}" ] || continue
  printf '\nuser %s\n' "$device"
  for channel in telemetry presence inference infer fl-update secagg ota-status; do
    printf 'topic write edgefl/%s/%s/%s\n' "$tenant" "$device" "$channel"
  done
  printf 'topic read edgefl/%s/%s/#\n' "$tenant" "$device"
  printf 'topic read edgefl/%s/broadcast/#\n' "$tenant"
done
