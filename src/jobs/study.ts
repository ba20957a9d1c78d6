// Studies: Optuna-style define-by-run hyperparameter search. A study's trials live in the same
// database as the job queue (sqlite:// or postgres://), so a study resumes after a crash and several
// processes on several machines can run trials of one study at once: each runs the same script with
// the same studyName and storage URL; trial numbers are handed out in a transaction, enqueued trials
// are claimed atomically, and the sampler reads the shared history (TPE counts the other running
// trials as the worst: a constant liar). suggest*, report and shouldPrune are synchronous (as in
// Optuna): a trial samples from the history loaded when it started; writes go out in order behind it.

import { Store, parseJson } from "./store.ts";
import { categoricalDistribution, floatDistribution, intDistribution, sameDistribution, type Distribution, type ParamValue } from "./distributions.ts";
import { makeSampler, trialRng, type Direction, type FrozenTrial, type Sampler, type SamplerSpec, type TrialState } from "./samplers.ts";
import { makePruner, type Pruner, type PrunerSpec } from "./pruners.ts";

/** Thrown by an objective to end its trial as pruned. */
export class TrialPruned extends Error {
  override name = "TrialPruned";
  constructor(message = "trial pruned") {
    super(message);
  }
}

export interface StudyOptions {
  direction?: Direction;
  sampler?: SamplerSpec;
  pruner?: PrunerSpec;
  /** sqlite://<file> or postgres://... (default: an in-memory SQLite database, gone with the process) */
  storage?: string;
  studyName?: string;
  /** join the study of that name if it exists (else a second study of one name is an error) */
  loadIfExists?: boolean;
  /** the sampler's seed */
  seed?: number;
  /** the grid sampler's points */
  searchSpace?: Record<string, readonly ParamValue[]>;
  /** a running trial not heard from for this long is marked failed (its process died); default 600 s */
  staleSeconds?: number;
}

export interface OptimizeOptions {
  /** trials this call runs (default: until timeout; with neither, 100) */
  nTrials?: number;
  /** seconds: no new trial starts after this */
  timeout?: number;
  /** one line per trial on stderr */
  showProgressBar?: boolean;
  /** errors of these classes fail the trial and the study goes on (others fail it and are thrown) */
  catch?: (new (...a: never[]) => Error)[];
  callbacks?: ((study: Study, trial: FrozenTrial) => void | Promise<void>)[];
}

type Row = Record<string, unknown>;

function frozen(r: Row): FrozenTrial {
  return {
    number: Number(r.number), state: r.state as TrialState, params: parseJson(r.params) ?? {}, distributions: parseJson(r.distributions) ?? {},
    value: r.value === null || r.value === undefined ? null : Number(r.value), intermediate: parseJson(r.intermediate) ?? {},
    userAttrs: parseJson(r.user_attrs) ?? {},
  };
}

export class Trial {
  readonly number: number;
  readonly study: Study;
  readonly params: Record<string, ParamValue> = {};
  readonly distributions: Record<string, Distribution> = {};
  readonly intermediate: Record<string, number> = {};
  readonly userAttrs: Record<string, unknown>;
  readonly #id: string;
  readonly #history: FrozenTrial[];
  readonly #fixed: Record<string, ParamValue>;
  readonly #rng;
  #writes: Promise<unknown> = Promise.resolve();
  #saveQueued = false;

  constructor(study: Study, id: string, number: number, history: FrozenTrial[], fixed: Record<string, ParamValue>, userAttrs: Record<string, unknown>) {
    this.study = study;
    this.#id = id;
    this.number = number;
    this.#history = history;
    this.#fixed = fixed;
    this.userAttrs = userAttrs;
    this.#rng = trialRng(study.sampler, number);
  }

  suggestFloat(name: string, low: number, high: number, options: { log?: boolean; step?: number | null } = {}): number {
    return this.#suggest(name, floatDistribution(name, low, high, options)) as number;
  }

  suggestInt(name: string, low: number, high: number, options: { log?: boolean; step?: number } = {}): number {
    return this.#suggest(name, intDistribution(name, low, high, options)) as number;
  }

  suggestCategorical<T extends ParamValue>(name: string, choices: readonly T[]): T {
    return this.#suggest(name, categoricalDistribution(name, choices)) as T;
  }

  #suggest(name: string, d: Distribution): ParamValue {
    if (name in this.params) {
      if (!sameDistribution(this.distributions[name], d)) throw new Error(`[study] ${name} was suggested twice in trial ${this.number} with different ranges`);
      return this.params[name];
    }
    const value = name in this.#fixed
      ? this.#fixed[name]
      : this.study.sampler.sample(name, d, { number: this.number, history: this.#history, direction: this.study.direction, rng: this.#rng, attrs: this.userAttrs });
    this.params[name] = value;
    this.distributions[name] = d;
    this.#save();
    return value;
  }

  /** An intermediate value (e.g. validation loss after an epoch) at a step. */
  report(value: number, step: number): void {
    if (!Number.isInteger(step) || step < 0) throw new Error(`[study] report: step must be an integer >= 0 (got ${step})`);
    if (typeof value !== "number") throw new Error(`[study] report: value must be a number (got ${JSON.stringify(value)})`);
    if (step in this.intermediate) return; // Optuna keeps the first report of a step
    this.intermediate[step] = value;
    this.#save();
  }

  /** Whether the study's pruner would stop this trial now. */
  shouldPrune(): boolean {
    return this.study.pruner.prune(this.frozen("running"), this.#history, this.study.direction);
  }

  setUserAttr(key: string, value: unknown): void {
    this.userAttrs[key] = value;
    this.#save();
  }

  frozen(state: TrialState, value: number | null = null): FrozenTrial {
    return { number: this.number, state, params: { ...this.params }, distributions: { ...this.distributions }, value, intermediate: { ...this.intermediate }, userAttrs: { ...this.userAttrs } };
  }

  /** Writes params, reports and attributes behind the trial: one write for all changes made before it runs. */
  #save(): void {
    if (this.#saveQueued) return;
    this.#saveQueued = true;
    this.#writes = this.#writes.then(async () => {
      this.#saveQueued = false;
      const snapshot = [JSON.stringify(this.params), JSON.stringify(this.distributions), JSON.stringify(this.intermediate), JSON.stringify(this.userAttrs)];
      const store = await this.study.store();
      await store.query(
        "UPDATE kiln_trials SET params = $2, distributions = $3, intermediate = $4, user_attrs = $5, heartbeat = NOW() WHERE id = $1 AND state = 'running'",
        [this.#id, ...snapshot],
      );
    });
  }

  /** Ends the trial (after the pending writes). */
  async finish(state: "complete" | "pruned" | "fail", value: number | null): Promise<void> {
    await this.#writes.catch(() => {});
    const store = await this.study.store();
    await store.query(
      `UPDATE kiln_trials SET state = $2, value = $3, params = $4, distributions = $5, intermediate = $6, user_attrs = $7, finished_at = NOW()
       WHERE id = $1`,
      [this.#id, state, value, JSON.stringify(this.params), JSON.stringify(this.distributions), JSON.stringify(this.intermediate), JSON.stringify(this.userAttrs)],
    );
  }
}

export class Study {
  readonly name: string;
  readonly direction: Direction;
  readonly sampler: Sampler;
  readonly pruner: Pruner;
  readonly #id: string;
  readonly #store: Store;
  readonly #staleSeconds: number;
  /** the trials as of the last load (optimize() and getTrials() refresh it) */
  trials: FrozenTrial[] = [];

  constructor(store: Store, id: string, name: string, direction: Direction, sampler: Sampler, pruner: Pruner, staleSeconds: number) {
    this.#store = store;
    this.#id = id;
    this.name = name;
    this.direction = direction;
    this.sampler = sampler;
    this.pruner = pruner;
    this.#staleSeconds = staleSeconds;
  }

  async store(): Promise<Store> {
    return this.#store;
  }

  /** Closes this study's connection to its storage. */
  async close(): Promise<void> {
    await this.#store.close();
  }

  /** All trials, oldest first (running ones of dead processes marked failed first). */
  async getTrials(): Promise<FrozenTrial[]> {
    await this.#store.query(
      "UPDATE kiln_trials SET state = 'fail', finished_at = NOW() WHERE study_id = $1 AND state = 'running' AND heartbeat < NOW() - $2",
      [this.#id, this.#staleSeconds * 1000],
    );
    const rows = await this.#store.query("SELECT * FROM kiln_trials WHERE study_id = $1 ORDER BY number", [this.#id]);
    this.trials = rows.map(frozen);
    return this.trials;
  }

  get bestTrial(): FrozenTrial | null {
    const done = this.trials.filter((t) => t.state === "complete" && t.value !== null && !Number.isNaN(t.value));
    if (!done.length) return null;
    return done.reduce((a, b) => ((this.direction === "minimize" ? b.value! < a.value! : b.value! > a.value!) ? b : a));
  }

  get bestValue(): number | null {
    return this.bestTrial?.value ?? null;
  }

  get bestParams(): Record<string, ParamValue> | null {
    return this.bestTrial?.params ?? null;
  }

  /** A hand-picked point: the next trial takes these values for these parameters (others are sampled). */
  async enqueueTrial(params: Record<string, ParamValue>, userAttrs: Record<string, unknown> = {}): Promise<void> {
    await this.#newTrial("waiting", params, userAttrs);
  }

  async #newTrial(state: TrialState, params: Record<string, ParamValue> = {}, userAttrs: Record<string, unknown> = {}): Promise<{ id: string; number: number }> {
    const id = Bun.randomUUIDv7();
    const number = await this.#store.transaction(async (tx) => {
      if (this.#store.dialect === "postgres") await tx.unsafe("SELECT id FROM kiln_studies WHERE id = $1 FOR UPDATE", [this.#id]);
      const rows = await tx.unsafe("SELECT COALESCE(MAX(number), -1) + 1 AS n FROM kiln_trials WHERE study_id = $1", [this.#id]);
      const n = Number(rows[0].n);
      await tx.unsafe(
        `INSERT INTO kiln_trials (id, study_id, number, state, params, user_attrs, heartbeat, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, NOW(), NOW())`,
        [id, this.#id, n, state, JSON.stringify(params), JSON.stringify(userAttrs)],
      );
      return n;
    });
    return { id, number };
  }

  /** Starts a trial: an enqueued one if any (claimed atomically), else a new one. */
  async ask(): Promise<Trial> {
    let history = await this.getTrials();
    if (history.some((t) => t.state === "waiting")) {
      const pick = `SELECT id FROM kiln_trials WHERE study_id = $1 AND state = 'waiting' ORDER BY number LIMIT 1${this.#store.dialect === "postgres" ? " FOR UPDATE SKIP LOCKED" : ""}`;
      const claimed = await this.#store.transaction((tx) =>
        tx.unsafe(`UPDATE kiln_trials SET state = 'running', heartbeat = NOW(), started_at = NOW() WHERE id = (${pick}) RETURNING *`, [this.#id]),
      );
      if (claimed.length) {
        const t = frozen(claimed[0]);
        history = await this.getTrials();
        return new Trial(this, claimed[0].id as string, t.number, history.filter((h) => h.number !== t.number && h.state !== "waiting"), t.params, t.userAttrs);
      }
    }
    const { id, number } = await this.#newTrial("running");
    return new Trial(this, id, number, history.filter((t) => t.state !== "waiting"), {}, {});
  }

  /** Ends a trial started with ask(). */
  async tell(trial: Trial, value: number | null, state: "complete" | "pruned" | "fail" = "complete"): Promise<void> {
    if (state === "complete" && (typeof value !== "number" || Number.isNaN(value))) {
      await trial.finish("fail", null);
      throw new Error(`[study] trial ${trial.number}: the objective returned ${JSON.stringify(value)}, not a number`);
    }
    await trial.finish(state, value);
  }

  /** Runs `objective` for nTrials trials (or until timeout), each a define-by-run trial. */
  async optimize(objective: (trial: Trial) => number | Promise<number>, options: OptimizeOptions = {}): Promise<void> {
    const nTrials = options.nTrials ?? (options.timeout === undefined ? 100 : Infinity);
    const deadline = options.timeout === undefined ? Infinity : performance.now() + options.timeout * 1000;
    for (let i = 0; i < nTrials && performance.now() < deadline; i++) {
      if (this.sampler.exhausted && this.sampler.exhausted(await this.getTrials())) break;
      const trial = await this.ask();
      let state: "complete" | "pruned" | "fail" = "complete";
      let value: number | null = null;
      let error: unknown = null;
      try {
        value = await objective(trial);
      } catch (e) {
        if (e instanceof TrialPruned) {
          state = "pruned";
          const steps = Object.keys(trial.intermediate).map(Number);
          value = steps.length ? trial.intermediate[Math.max(...steps)] : null;
        } else {
          state = "fail";
          error = e;
        }
      }
      if (state === "complete" && (typeof value !== "number" || Number.isNaN(value))) {
        state = "fail";
        error = new Error(`[study] trial ${trial.number}: the objective returned ${JSON.stringify(value)}, not a number`);
        value = null;
      }
      await trial.finish(state, state === "fail" ? null : value);
      this.trials = [...this.trials.filter((t) => t.number !== trial.number), trial.frozen(state, state === "fail" ? null : value)].sort((a, b) => a.number - b.number);
      if (options.showProgressBar) {
        const best = this.bestValue;
        console.error(`[${this.name}] trial ${trial.number} ${state}${value !== null ? ` value ${value}` : ""} ${JSON.stringify(trial.params)}; best ${best ?? "-"} (${i + 1}/${nTrials === Infinity ? "?" : nTrials})`);
      }
      for (const cb of options.callbacks ?? []) await cb(this, trial.frozen(state, value));
      if (error && !(options.catch ?? []).some((c) => error instanceof c)) throw error;
    }
    await this.getTrials();
  }
}

/** Creates (or with loadIfExists, joins) a study in `storage`. */
export async function createStudy(options: StudyOptions = {}): Promise<Study> {
  const direction = options.direction ?? "minimize";
  if (direction !== "minimize" && direction !== "maximize") throw new Error(`[study] direction must be "minimize" or "maximize" (got ${JSON.stringify(direction)})`);
  const store = await Store.open(options.storage ?? "sqlite://:memory:");
  const name = options.studyName ?? `study-${Bun.randomUUIDv7()}`;
  const id = Bun.randomUUIDv7();
  const row = await store.transaction(async (tx) => {
    const found = await tx.unsafe("SELECT * FROM kiln_studies WHERE name = $1", [name]);
    if (found.length) {
      if (!options.loadIfExists) throw new Error(`[study] a study named ${JSON.stringify(name)} already exists in ${store.url} (pass loadIfExists: true to join it)`);
      return found[0];
    }
    // ON CONFLICT: another process may create the same study at this moment
    await tx.unsafe("INSERT INTO kiln_studies (id, name, direction, created_at) VALUES ($1, $2, $3, NOW()) ON CONFLICT (name) DO NOTHING", [id, name, direction]);
    return (await tx.unsafe("SELECT * FROM kiln_studies WHERE name = $1", [name]))[0];
  });
  if (row.direction !== direction) throw new Error(`[study] study ${JSON.stringify(name)} is ${row.direction}, not ${direction}`);
  const study = new Study(store, row.id as string, name, direction, makeSampler(options.sampler, options), makePruner(options.pruner), options.staleSeconds ?? 600);
  await study.getTrials();
  return study;
}

/** Joins an existing study. */
export function loadStudy(options: StudyOptions & { studyName: string; storage: string }): Promise<Study> {
  return createStudy({ ...options, loadIfExists: true });
}
