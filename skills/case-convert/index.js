function words(text) {
  return text
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

module.exports.execute = (inputs) => {
  const parts = words(inputs.text);
  const capital = (w) => w.charAt(0).toUpperCase() + w.slice(1);
  return {
    camel: parts.map((w, i) => (i === 0 ? w : capital(w))).join(""),
    pascal: parts.map(capital).join(""),
    snake: parts.join("_"),
    kebab: parts.join("-"),
    constant: parts.join("_").toUpperCase(),
  };
};
