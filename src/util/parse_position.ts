// Where a config file stops parsing, for error messages: JavaScriptCore's JSON.parse and Bun.YAML
// errors carry no position ("JSON Parse error: Expected '}'"). For JSON a small recursive-descent scan
// finds the offset of the first error (line and column); for YAML the first line whose prefix no
// longer parses (a line, not a column: an unclosed bracket is reported where the text gives up).
// Used only after the real parser has failed. Reference: RFC 8259 grammar.

/** "line L, column C" (1-based) of the first syntax error in `text`, or undefined if it finds none. */
export function jsonErrorPosition(text: string): string | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const value = (depth: number): void => {
    if (depth > 10_000) fail();
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ":") fail();
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
  };
  const string = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u" ? !/^u[0-9a-fA-F]{4}$/.test(text.slice(i, i + 5)) : !'"\\/bfnrt'.includes(text[i] ?? "x")) fail();
      } else if (text.charCodeAt(i) < 0x20) fail();
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  try {
    value(0);
    ws();
    if (i < text.length) fail();
    return undefined;
  } catch (at) {
    if (typeof at !== "number") throw at;
    const before = text.slice(0, at);
    const line = before.split("\n").length;
    return `line ${line}, column ${at - before.lastIndexOf("\n")}`;
  }
}

/** "near line L" for the first line at which the YAML prefix of `text` stops parsing, or undefined. */
export function yamlErrorPosition(text: string, parse: (t: string) => unknown = (t) => Bun.YAML.parse(t)): string | undefined {
  const lines = text.split("\n");
  if (lines.length > 5000) return undefined;
  for (let n = 1; n <= lines.length; n++) {
    try {
      parse(lines.slice(0, n).join("\n"));
    } catch {
      return `near line ${n}`;
    }
  }
  return undefined;
}
