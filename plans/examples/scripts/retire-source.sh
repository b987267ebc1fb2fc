#!/bin/sh
# Retire the source copies once the final verification is approved.
#
#   retire-source.sh --region REGION
#
# Deleting data is not undoable, so this example does not delete: it moves the source
# bucket's prefix under retired/ with a lifecycle rule of 30 days (the customer's
# notice period), using the AWS CLI against the source endpoint (MSK_S3_ENDPOINT).
# DRY_RUN=1 prints what it would do.
set -eu
if [ "$#" -ne 2 ] || [ "$1" != "--region" ]; then
    echo "usage: $0 --region REGION" >&2
    exit 2
fi
region=$2
bucket=${SOURCE_BUCKET:-threat-telemetry}
if [ -n "${DRY_RUN:-}" ]; then
    echo "DRY_RUN: would move s3://$bucket/customers/ to s3://$bucket/retired/customers/ in $region and expire it after 30 days"
    exit 0
fi
: "${MSK_S3_ENDPOINT:?set MSK_S3_ENDPOINT to the source region's S3 endpoint (or DRY_RUN=1)}"
aws --endpoint-url "$MSK_S3_ENDPOINT" s3 mv --recursive \
    "s3://$bucket/customers/" "s3://$bucket/retired/customers/"
aws --endpoint-url "$MSK_S3_ENDPOINT" s3api put-bucket-lifecycle-configuration \
    --bucket "$bucket" --lifecycle-configuration \
    '{"Rules":[{"ID":"retired","Filter":{"Prefix":"retired/"},"Status":"Enabled","Expiration":{"Days":30}}]}'
echo "retired s3://$bucket/customers/ in $region (expires in 30 days)"
