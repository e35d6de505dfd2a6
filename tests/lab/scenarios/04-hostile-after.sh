# shellcheck shell=bash
# The hostile-flow suite under redwarden's sandbox: every attempt is blocked, and Node-RED
# still serves. Prints the before/after table.
need_redwarden
depends_on 02-apply-works
# shellcheck source=tests/lab/hostile.sh
source "$LAB_DIR/hostile.sh"
hostile_run after
hostile_table | report
worked=$(grep '|0$' "$LAB_RUN/hostile-after" | cut -d'|' -f1 | tr '\n' ',' || true)
[[ -z "$worked" ]] || fail "not blocked under redwarden: ${worked%,}"
wait_nodered 30
