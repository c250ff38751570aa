module.exports.execute = async (inputs) => {
  if (typeof inputs.query === "string") {
    const params = new URLSearchParams(inputs.query.replace(/^\?/, ""));
    const out = {};
    for (const key of new Set(params.keys())) {
      const values = params.getAll(key);
      out[key] = values.length > 1 ? values : values[0];
    }
    return { params: out };
  }
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(inputs.params || {})) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  return { query: params.toString() };
};
