// expect: nodered.settings-unevaluable
// Hostile: module.exports = 42.

module.exports = 42;
