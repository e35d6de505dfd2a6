// expect: nodered.settings-unevaluable
// Hostile/realistic: a syntax error (a missing comma after an edited entry), as Node-RED would refuse it too.

module.exports = {
    flowFile: "flows.json"
    uiHost: "127.0.0.1",
}
