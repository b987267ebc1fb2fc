#!/bin/sh
# The Swiss auditor's command hook for zurich-relocation.yaml.
#
# relocate runs it when a stage reaches the auditor's gate, with the stage's evidence
# (a DSSE envelope) on stdin, and expects the signed approval envelope on stdout.
# Nothing is approved blindly: the evidence is shown in words (on stderr, into the
# run's log) and the auditor's tool checks it before signing.
#
# In practice the auditor's key never leaves the auditor's machine: set AUDITOR_SSH to
# reach it (e.g. `auditor@audit.example.ch`) and the evidence is piped there, where
# `relocate approve` runs with the key. Without AUDITOR_SSH the key is read from
# SWISS_AUDITOR_KEY on this machine (a demo or a test). relocate sets RELOCATE_BIN to
# its own executable, so the hook works from a build tree too.
set -eu
relocate=${RELOCATE_BIN:-relocate}
if [ -n "${DRY_RUN:-}" ]; then
    echo "DRY_RUN: would ask the Swiss auditor for stage ${RELOCATE_STAGE:-?}" >&2
    exit 1
fi
if [ -n "${AUDITOR_SSH:-}" ]; then
    exec ssh -o BatchMode=yes "$AUDITOR_SSH" \
        relocate approve --key "${AUDITOR_REMOTE_KEY:-swiss-auditor.key}" --evidence - --show --unpinned
fi
: "${SWISS_AUDITOR_KEY:?set SWISS_AUDITOR_KEY to the auditor key file, or AUDITOR_SSH to the auditor host}"
exec "$relocate" approve --key "$SWISS_AUDITOR_KEY" --evidence - --show
