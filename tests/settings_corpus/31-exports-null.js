// expect: nodered.settings-unevaluable
// Hostile: module.exports = null.

module.exports = null;
