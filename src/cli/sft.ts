// `kiln sft`: supervised LoRA fine-tuning (see ./finetune.ts).
import { runFinetune } from "./finetune.ts";

export function main(argv: string[]): Promise<number> {
  return runFinetune("sft", argv);
}
