const TABLE = [[1000, "M"], [900, "CM"], [500, "D"], [400, "CD"], [100, "C"], [90, "XC"], [50, "L"], [40, "XL"], [10, "X"], [9, "IX"], [5, "V"], [4, "IV"], [1, "I"]];

function toRoman(number) {
  if (!Number.isInteger(number) || number < 1 || number > 3999) throw new Error("give an integer from 1 to 3999");
  let out = "";
  for (const [value, symbol] of TABLE) while (number >= value) { out += symbol; number -= value; }
  return out;
}

function fromRoman(text) {
  const upper = text.toUpperCase();
  let rest = upper, total = 0;
  for (const [value, symbol] of TABLE) while (rest.startsWith(symbol)) { total += value; rest = rest.slice(symbol.length); }
  if (rest.length > 0 || total === 0 || toRoman(total) !== upper) throw new Error(`${text} is not a Roman numeral`);
  return total;
}

export async function execute(inputs) {
  if (typeof inputs.number === "number") return { roman: toRoman(inputs.number) };
  return { number: fromRoman(String(inputs.roman)) };
}
