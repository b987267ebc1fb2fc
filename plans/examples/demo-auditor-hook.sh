#!/bin/sh
# The quickstart's auditor: reads the stage's evidence on stdin and prints a signed
# approval on stdout. It approves whatever it is shown; a real auditor's hook checks
# the evidence first and runs where the secret key lives.
#
# relocate sets RELOCATE_BIN to its own executable when it runs a hook, so the demo
# works from a build tree without installing relocate.
set -eu
exec "${RELOCATE_BIN:-relocate}" approve --key "$(dirname "$0")/demo-auditor.key" --evidence -
