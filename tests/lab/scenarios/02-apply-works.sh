# `redwarden apply` fixes everything it can, and Node-RED still works.
need_redwarden

rc=0
in_ct redwarden apply || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "redwarden apply exited $rc"

rc=$(redwarden_json check)
fixable=$(finding_ids fixable) || fail "check --json is not the expected JSON"
[[ -z "$fixable" ]] || fail "fixable findings remain after apply: $(echo "$fixable" | tr '\n' ' ')"
log "check after apply: rc $rc, remaining: $(finding_ids | tr '\n' ' ')"

# modes, judged from the host
s=$(stat_ct /home/pi/.node-red/settings.js)
[[ "$s" == "640 root "* ]] || fail "settings.js is '$s', want 640 root:<group>"
for f in flows_cred.json .config.runtime.json; do
    s=$(stat_ct "/home/pi/.node-red/$f")
    [[ "$s" == 600\ * ]] || fail "$f is '$s', want 0600"
done

# Node-RED still serves and deploys (apply may have restarted it)
wait_nodered
deploy_flow '[{"id":"lab-tab","type":"tab","label":"lab"},
  {"id":"lab-in","type":"http in","z":"lab-tab","url":"/lab-echo","method":"get","wires":[["lab-fn"]]},
  {"id":"lab-fn","type":"function","z":"lab-tab","func":"msg.payload = \"echo:\" + msg.req.query.q;\nreturn msg;","outputs":1,"wires":[["lab-out"]]},
  {"id":"lab-out","type":"http response","z":"lab-tab","statusCode":"","wires":[]},
  {"id":"lab-broker","type":"mqtt-broker","name":"lab","broker":"127.0.0.1","port":"1883",
   "credentials":{"user":"lab","password":"s3cret"}}]'
body=""
for _ in $(seq 20); do body=$(http GET "/lab-echo?q=42") && break; sleep 0.5; done
assert_eq "echo:42" "$body" "GET /lab-echo?q=42 from the host"
