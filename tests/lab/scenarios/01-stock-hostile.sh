# shellcheck shell=bash
# The hostile-flow suite under the installer's stock unit (Node-RED as pi, no sandbox): the
# "before" column of the table that 04-hostile-after prints.
# shellcheck source=tests/lab/hostile.sh
source "$LAB_DIR/hostile.sh"
hostile_run before
log "stock: $(grep -c '|0$' "$LAB_RUN/hostile-before" || true) of ${#HOSTILE_ATTEMPTS[@]} attempts worked"
