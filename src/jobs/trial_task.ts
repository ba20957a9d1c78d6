// The `trial` task: one trial of a study as a queue job. It asks the study (in the queue's own
// database unless `storage` says otherwise) for a trial, writes the suggested values into the inner
// task's config at their dotted paths ({ "train.lr": [1e-4, 1e-2] }), runs the inner task, and
// tells the study the result's `objective` field. Submitting N trial jobs spreads a search over
// every worker; TPE's constant liar keeps concurrent trials apart.

import { z } from "zod";
import { createStudy } from "./study.ts";
import { suggestSpace, type SearchSpace } from "./search.ts";
import type { TaskContext, TaskDefinition } from "./types.ts";

export const TrialJob = z.strictObject({
  /** the study's name (created on first use) */
  study: z.string().min(1),
  /** the study's database (default: the queue's) */
  storage: z.string().optional(),
  direction: z.enum(["minimize", "maximize"]).default("minimize"),
  sampler: z.enum(["tpe", "random"]).default("tpe"),
  seed: z.number().int().default(0),
  /** the task each trial runs, and its config before the suggested values are written in */
  task: z.string().min(1),
  config: z.record(z.string(), z.unknown()).default({}),
  /** dotted config path -> range or choices (the hyperparameterSearch space) */
  space: z.record(z.string(), z.unknown()),
  /** dotted path of the number in the inner task's result to optimise */
  objective: z.string().default("final_loss"),
});
export type TrialJob = z.infer<typeof TrialJob>;

interface Registry {
  runTask(task: string, config: unknown, ctx: TaskContext): Promise<unknown>;
  validate(task: string, config: unknown): void;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = target;
  for (const k of keys.slice(0, -1)) {
    if (!o[k] || typeof o[k] !== "object") o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}

export function trialTask(registry: Registry): TaskDefinition<unknown> {
  const schema = TrialJob.superRefine((job, ctx) => {
    if (job.task === "trial") ctx.addIssue({ code: "custom", path: ["task"], message: "a trial cannot run trials" });
    else {
      try {
        registry.validate(job.task, job.config);
      } catch (e) {
        ctx.addIssue({ code: "custom", path: ["config"], message: (e as Error).message });
      }
    }
  });
  return {
    description: "one trial of a study: suggested values written into an inner task's config; the result's objective told to the study",
    schema: schema as unknown as z.ZodType<unknown>,
    run: async (raw, ctx) => {
      const job = raw as TrialJob;
      if (!job.storage && !ctx.queueUrl) throw new Error("[trial] no storage: give one, or run the job from a queue");
      const study = await createStudy({ storage: job.storage ?? ctx.queueUrl, studyName: job.study, loadIfExists: true, direction: job.direction, sampler: job.sampler, seed: job.seed });
      try {
        const trial = await study.ask();
        const params = suggestSpace(trial, job.space as SearchSpace);
        const config = structuredClone(job.config);
        for (const [path, value] of Object.entries(params)) setPath(config, path, value);
        ctx.log(`trial ${trial.number} of ${job.study}: ${JSON.stringify(params)}`);
        let result: unknown;
        try {
          result = await registry.runTask(job.task, config, ctx);
        } catch (e) {
          await study.tell(trial, null, "fail");
          throw e;
        }
        let value: unknown = result;
        for (const k of job.objective.split(".")) value = value && typeof value === "object" ? (value as Record<string, unknown>)[k] : undefined;
        if (typeof value !== "number") {
          await study.tell(trial, null, "fail");
          throw new Error(`[trial] the ${job.task} result has no number at ${JSON.stringify(job.objective)} (got ${JSON.stringify(value)})`);
        }
        await study.tell(trial, value);
        return { study: job.study, trial: trial.number, params, value, result };
      } finally {
        await study.close();
      }
    },
  };
}
