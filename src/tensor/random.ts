// Seeded host random numbers: xoshiro128** (32-bit state words, exact in JS) plus Box–Muller
// normals. Its state is four u32s, saved in checkpoints so a resumed run draws the same numbers.
// Reference: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2018).

import { AsyncLocalStorage } from "node:async_hooks";

export class Rng {
  /** The RNG used when none is passed (weight init, batches); reseed with seed(). */
  static global = new Rng(1337);

  #s = new Uint32Array(4);
  #spare: number | null = null;

  constructor(seed: number) {
    this.reseed(seed);
  }

  reseed(seed: number): void {
    // splitmix32 expands the seed into the four state words
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((w) => w === 0)) this.#s[0] = 1;
    this.#spare = null;
  }

  /** A uniform u32. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  normal(mean = 0, std = 1): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return mean + std * v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  fillNormal(out: Float32Array, mean = 0, std = 1): void {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
  }

  /** The full state (for checkpoints). */
  getState(): { s: number[]; spare: number | null } {
    return { s: Array.from(this.#s), spare: this.#spare };
  }

  setState(state: { s: number[]; spare: number | null }): void {
    if (!Array.isArray(state.s) || state.s.length !== 4) throw new Error("[rng] invalid state");
    this.#s.set(state.s.map((w) => w >>> 0));
    this.#spare = state.spare;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * A fresh 32-bit seed from the system's entropy (crypto.getRandomValues), for calls given no seed
 * that must not draw from — and so advance — the global RNG that other calls share.
 */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Reseeds the global RNG: weight init and batch sampling then repeat exactly. */
export function seed(n: number): void {
  Rng.global.reseed(n);
}

const streams = new AsyncLocalStorage<Rng>();

/**
 * Runs fn with `rng` as the RNG that ops draw from when given none (dropout): a stream owned by
 * one call (a training step) that leaves Rng.global untouched, also across awaits.
 */
export function withRng<T>(rng: Rng, fn: () => T): T {
  return streams.run(rng, fn);
}

/** The RNG of the current withRng call, else Rng.global. */
export function currentRng(): Rng {
  return streams.getStore() ?? Rng.global;
}
