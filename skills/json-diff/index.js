function diff(a, b, path, out) {
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object" && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of [...keys].sort()) {
      const next = path ? `${path}.${key}` : key;
      if (!(key in b)) out.removed.push(next);
      else if (!(key in a)) out.added.push(next);
      else diff(a[key], b[key], next, out);
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.changed.push({ path, from: a, to: b });
  }
  return out;
}

module.exports.execute = function execute(inputs) {
  const result = diff(inputs.a, inputs.b, "", { added: [], removed: [], changed: [] });
  result.equal = result.added.length + result.removed.length + result.changed.length === 0;
  return result;
};
