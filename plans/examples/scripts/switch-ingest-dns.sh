#!/bin/sh
# Point one geography's sensor ingest name at a region: the cutover of a wave.
#
#   switch-ingest-dns.sh GEO REGION        e.g. switch-ingest-dns.sh eu zurich
#
# Sets the CNAME ingest-GEO.telemetry.example.net to ingest-GEO.REGION.example.ch
# through a DNS provider's HTTP API (DNS_API: the zone's record endpoint, DNS_TOKEN: a
# token allowed to edit it), with a 60 s TTL so a rollback takes effect quickly.
# DRY_RUN=1 prints the change and makes none. A non-zero exit fails the stage.
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: $0 GEO REGION" >&2
    exit 2
fi
geo=$1
region=$2
name="ingest-$geo.telemetry.example.net"
target="ingest-$geo.$region.example.ch."
if [ -n "${DRY_RUN:-}" ]; then
    echo "DRY_RUN: would point $name at $target"
    exit 0
fi
: "${DNS_API:?set DNS_API to the DNS zone's record endpoint (or DRY_RUN=1)}"
: "${DNS_TOKEN:?set DNS_TOKEN to a token allowed to edit the zone}"
curl --fail --silent --show-error --max-time 30 -X PUT \
    -H "Authorization: Bearer $DNS_TOKEN" -H "Content-Type: application/json" \
    --data "{\"name\":\"$name\",\"type\":\"CNAME\",\"content\":\"$target\",\"ttl\":60}" \
    "$DNS_API/$name"
echo "pointed $name at $target"
