// `kiln config migrate|validate|presets|show`: the builder's structured configs (src/builder) from
// the command line: migrate a flat nanoGPT config, check (and repair) one, list and print presets.
import { parseArgs } from "node:util";
import { fixConfig, loadConfig, migrateLegacyConfig, PRESETS, validateConfig } from "../builder/index.ts";
import { UserError } from "../util/errors.ts";

const HELP = `usage: kiln config migrate <old.json|yaml> <new.json|yaml>
       kiln config validate <config> [--fix <out>] [--vocab-size <tokenizer's n>]
       kiln config presets
       kiln config show (<config> | --preset <name>)

migrate:  a flat nanoGPT-style config (n_layer, n_head, n_embd, block_size, max_iters, ...) → the
          sectioned one (model / training / system), listing what moved and what was left out.
validate: prints each problem (field, value, why); --fix writes a repaired copy and says what changed.
presets:  the presets with their sizes and the hardware they target.
show:     the full config (defaults filled in) as JSON.`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { fix: { type: "string" }, "vocab-size": { type: "string" }, preset: { type: "string" }, help: { type: "boolean", short: "h" } } });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const { values, positionals } = parsed;
  const [sub, ...files] = positionals;
  if (values.help || !sub) {
    console.log(HELP);
    return 0;
  }
  switch (sub) {
    case "migrate": {
      if (files.length !== 2) throw new UserError("migrate needs two files: kiln config migrate old.json new.json");
      const { notice } = await migrateLegacyConfig(files[0], files[1]);
      console.log(`wrote ${files[1]}: ${notice}`);
      return 0;
    }
    case "validate": {
      if (files.length !== 1) throw new UserError("validate needs one config file");
      const vocab = values["vocab-size"] === undefined ? undefined : Number(values["vocab-size"]);
      if (vocab !== undefined && !(Number.isInteger(vocab) && vocab > 0)) throw new UserError(`--vocab-size: expected a positive integer, got "${values["vocab-size"]}"`);
      const config = await loadConfig(files[0]);
      const { isValid, errors } = validateConfig(config, { tokenizerVocabSize: vocab });
      for (const e of errors) console.log(`${e.field}: ${JSON.stringify(e.value)} ${e.message}`);
      if (values.fix) {
        const fixed = fixConfig(config, errors, { tokenizerVocabSize: vocab });
        for (const f of fixed.fixes) console.log(`fixed ${f}`);
        await fixed.config.save(values.fix);
        console.log(`wrote ${values.fix}`);
        return fixed.remaining.length ? 1 : 0;
      }
      console.log(isValid ? `${files[0]}: valid` : `${files[0]}: ${errors.length} problem(s)`);
      return isValid ? 0 : 1;
    }
    case "presets":
      for (const [name, p] of Object.entries(PRESETS)) console.log(`${name.padEnd(11)} ${p.description}`);
      return 0;
    case "show": {
      const config = values.preset ? await loadConfig({ preset: values.preset as never }) : files[0] ? await loadConfig(files[0]) : undefined;
      if (!config) throw new UserError("show needs a config file or --preset <name>");
      console.log(JSON.stringify(config.toJSON(), null, 2));
      return 0;
    }
    default:
      throw new UserError(`unknown subcommand "${sub}" (migrate, validate, presets, show)`);
  }
}
