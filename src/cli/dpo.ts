// `kiln dpo`: preference tuning with LoRA (see ./finetune.ts).
import { runFinetune } from "./finetune.ts";

export function main(argv: string[]): Promise<number> {
  return runFinetune("dpo", argv);
}
